"""Shared test set-up: make the bundle's ``scripts`` package importable and keep torch to one thread."""

import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLE_ROOT = REPO_ROOT / "bundle"
SHARED_DIR = REPO_ROOT.parent / "shared"

if str(BUNDLE_ROOT) not in sys.path:
    sys.path.insert(0, str(BUNDLE_ROOT))

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def bundle_root() -> Path:
    return BUNDLE_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"../shared is absent ({SHARED_DIR}): the real autoPET fixtures live there")
    return SHARED_DIR


@pytest.fixture(scope="session")
def make_tiny_dataset(tmp_path_factory):
    """A factory of small prepared datasets: synthetic studies at 10 x 10 x 15 mm, nnU-Net layout, 3 folds."""
    from scripts.data.prepare import prepare_dataset
    from scripts.synthetic import generate_cohort

    def make(name: str, n: int = 6, seed: int = 3, shape=(48, 48, 64), negative_share: float = 0.3) -> Path:
        work = tmp_path_factory.mktemp(name)
        spacing = (10.0, 10.0, 15.0)
        generate_cohort(work / "raw", n, seed=seed, shape=shape, spacing=spacing, negative_share=negative_share)
        return prepare_dataset(work / "raw", work / "nnunet", n_folds=3, seed=0).folder

    return make
