# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Reading checkpoint files, in one place, for inference, export, resume checks and encoder transfer.

A checkpoint holds the network weights flat (``{name: tensor}``) or nested under one of
:data:`STATE_DICT_KEYS`: the ``save_dict`` names of MONAI/ignite ``CheckpointSaver`` in our configs
(``model``), other bundles' (``network``, ``net``) and the generic ``state_dict``. Weights saved from
DistributedDataParallel carry :data:`DDP_PREFIX`. Training resumes through MONAI's ``CheckpointLoader``, which
reads the same files; :mod:`scripts.training.last_checkpoints` finds them.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from scripts.errors import InputDataError

STATE_DICT_KEYS = ("model", "network", "state_dict", "net")
DDP_PREFIX = "module."


FOLD_MODEL_GLOB = os.path.join("models", "fold*", "model.pt")
SINGLE_MODEL = os.path.join("models", "model.pt")


def fold_model_path(bundle_root: str | os.PathLike, fold: int) -> str:
    """The best model of one fold: ``<bundle_root>/models/fold<k>/model.pt``."""
    return os.path.join(bundle_root, "models", f"fold{fold}", "model.pt")


def fold_model_paths(bundle_root: str | os.PathLike) -> list[str]:
    """Every fold's best model under ``bundle_root`` (sorted), else ``[<bundle_root>/models/model.pt]``."""
    found = sorted(glob.glob(os.path.join(bundle_root, FOLD_MODEL_GLOB)))
    return found or [os.path.join(bundle_root, SINGLE_MODEL)]


def load_checkpoint_file(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", missing: str = "checkpoint file not found"
) -> Mapping[Any, Any]:
    """``torch.load`` a checkpoint safely (``weights_only``) and check it is a dict.

    Args:
        path: the file.
        map_location: where the tensors go.
        missing: the problem reported for an absent file (callers name what they expected).

    Raises:
        InputDataError: the file is missing, not a PyTorch checkpoint, or not a dict.
    """
    file = Path(path)
    if not file.is_file():
        raise InputDataError(file, missing)
    try:
        content = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for non-checkpoint or unsafe files
        raise InputDataError(
            file, f"cannot be read as a PyTorch checkpoint ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(content, Mapping):
        raise InputDataError(file, f"not a state dict or a dict of them: it holds a {type(content).__name__}")
    return content


def candidate_state_dicts(content: Mapping[Any, Any]) -> Iterator[Mapping[Any, Any]]:
    """``content`` itself, then each mapping nested under a :data:`STATE_DICT_KEYS` key, in that order."""
    yield content
    for key in STATE_DICT_KEYS:
        if isinstance(content.get(key), Mapping):
            yield content[key]


def read_state_dict(checkpoint: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The network weights in ``checkpoint``: flat, or nested under a :data:`STATE_DICT_KEYS` key.

    Raises:
        InputDataError: the file is missing, unreadable, or holds no recognisable state dict.
    """
    path = Path(checkpoint)
    top = load_checkpoint_file(path, map_location)
    content = next((found for found in candidate_state_dicts(top) if found is not top), top)
    if not content or not all(isinstance(value, torch.Tensor) for value in content.values()):
        raise InputDataError(
            path,
            f"no network state dict found: expected tensors, or one under a key in {list(STATE_DICT_KEYS)}; "
            f"top-level keys are {_preview(content)}",
        )
    return dict(content)


def _preview(keys: Any, limit: int = 3) -> str:
    keys = list(keys)
    shown = ", ".join(repr(key) for key in keys[:limit])
    return f"[{shown}{', ...' if len(keys) > limit else ''}]"
