# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Pretraining datalists that mix PET/CT studies and CT-only studies (CLI: ``scripts.mae.write_pretraining_datalist``).

Items (paths relative to the datalist's base folder, as ``load_decathlon_datalist`` resolves them):
``{"image": [ct, pet]}`` for a PET/CT study and ``{"image": ct, "pet": null}`` for a CT-only one;
:class:`~scripts.mae.LoadPretrainingStudyd` loads both.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scripts.data.file_layout import NIFTI_SUFFIXES
from scripts.errors import InputDataError
from scripts.mae.keys import PET_KEY
from scripts.transforms import pet_partner_candidates

PathLike = str | os.PathLike


def pretraining_item(ct: PathLike, pet: PathLike | None = None) -> dict[str, Any]:
    """``{"image": [ct, pet]}``, or ``{"image": ct, "pet": None}`` for a CT-only study."""
    if pet is None:
        return {"image": str(ct), PET_KEY: None}
    return {"image": [str(ct), str(pet)]}


def pretraining_datalist(
    pet_ct_studies: Sequence[Sequence[PathLike]] = (),
    ct_only_studies: Sequence[PathLike] = (),
    validation_fraction: float = 0.0,
    seed: int = 0,
) -> dict[str, list[dict[str, Any]]]:
    """``{"training": [...], "validation": [...]}`` of PET/CT and CT-only items.

    A random ``validation_fraction`` of all studies (seeded) is held out, e.g. to watch the reconstruction
    loss on unseen volumes; each list keeps the input order (PET/CT studies first).

    Args:
        pet_ct_studies: ``(ct, pet)`` pairs.
        ct_only_studies: CT files without PET.
        validation_fraction: fraction held out, in [0, 1).
        seed: seed of the hold-out draw.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    items = []
    for study in pet_ct_studies:
        if len(study) != 2:
            raise ValueError(f"a PET/CT study is a (ct, pet) pair, got {study!r}")
        items.append(pretraining_item(study[0], study[1]))
    items += [pretraining_item(ct) for ct in ct_only_studies]
    if not items:
        raise ValueError("no studies given: pass PET/CT pairs and/or CT-only files")
    held_out = set(random.Random(seed).sample(range(len(items)), round(validation_fraction * len(items))))
    return {
        "training": [item for index, item in enumerate(items) if index not in held_out],
        "validation": [item for index, item in enumerate(items) if index in held_out],
    }


def _nifti_files(folder: Path, pattern: str = "*") -> list[Path]:
    if not folder.is_dir():
        raise InputDataError(folder, "folder not found")
    return sorted(p for p in folder.rglob(pattern) if p.is_file() and p.name.endswith(NIFTI_SUFFIXES))


def find_pet_ct_studies(folder: PathLike) -> list[tuple[Path, Path]]:
    """Every ``(ct, pet)`` pair under ``folder`` (recursive), paired by file name.

    nnU-Net ``<case>_0000`` goes with ``<case>_0001``, autoPET ``CTres`` with ``SUV``; files without a partner
    (labels, PETs themselves) are skipped.
    """
    studies = []
    for path in _nifti_files(Path(folder)):
        partner = next((c for c in pet_partner_candidates(path) if c.is_file()), None)
        if partner is not None:
            studies.append((path, partner))
    return studies


def find_ct_files(folder: PathLike, pattern: str = "*") -> list[Path]:
    """Every NIfTI file under ``folder`` (recursive) whose name matches ``pattern``, taken as a CT-only study."""
    return _nifti_files(Path(folder), pattern)


def relative_datalist(datalist: dict[str, list[dict[str, Any]]], base_dir: PathLike) -> dict[str, list]:
    """The datalist with every path made relative to ``base_dir`` (``None`` PET entries kept)."""

    def relative(value: Any) -> Any:
        if isinstance(value, list):
            return [relative(v) for v in value]
        return None if value is None else os.path.relpath(value, base_dir)

    return {split: [{k: relative(v) for k, v in item.items()} for item in items] for split, items in datalist.items()}
