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
import pickle
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine
from monai.handlers import CheckpointLoader
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


ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive (since PyTorch 1.6)
PICKLE_MAGIC = b"\x80"  # the legacy format starts with a pickle protocol marker


def checkpoint_file_problem(file: Path) -> str | None:
    """What is wrong with a checkpoint file that shows without unpickling it (empty, truncated, foreign), or None."""
    size = file.stat().st_size
    if size == 0:
        return "an empty file (0 bytes): the checkpoint was never written completely"
    with open(file, "rb") as handle:
        start = handle.read(len(ZIP_MAGIC))
    if start == ZIP_MAGIC:
        if not zipfile.is_zipfile(file):
            return (
                f"a truncated checkpoint ({size} bytes; the end of its zip archive is missing): copy or save it again"
            )
        return None
    if not start.startswith(PICKLE_MAGIC):
        return f"not a PyTorch checkpoint ({size} bytes, starting {start!r})"
    return None


def unreadable_checkpoint_problem(file: Path, error: BaseException) -> str:
    """Say in one line why ``torch.load`` could not read ``file``: empty, truncated, foreign or unsafe."""
    found = checkpoint_file_problem(file) if file.is_file() else "checkpoint file not found"
    if found is not None:
        return found
    if "weights only load failed" in str(error).lower():
        return (
            "holds Python objects besides tensors, which the safe loader (weights_only) refuses to unpickle; "
            "only checkpoints of plain tensors and containers are read"
        )
    return f"cannot be read as a PyTorch checkpoint ({_one_line(error)})"


def _one_line(error: BaseException, limit: int = 240) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:limit] + ('...' if len(text) > limit else '') or 'no detail'}"


def load_checkpoint_file(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", missing: str = "checkpoint file not found"
) -> Mapping[Any, Any]:
    """``torch.load`` a checkpoint safely (``weights_only``) and check it is a dict.

    Args:
        path: the file.
        map_location: where the tensors go.
        missing: the problem reported for an absent file (callers name what they expected).

    Raises:
        InputDataError: the file is missing, empty, truncated, not a PyTorch checkpoint, holds objects the safe
            loader refuses, or is not a dict (:func:`unreadable_checkpoint_problem` words it).
    """
    file = Path(path)
    if not file.is_file():
        raise InputDataError(file, missing)
    try:
        content = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for non-checkpoint or unsafe files
        raise InputDataError(file, unreadable_checkpoint_problem(file, error)) from error
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


class ResumeCheckpointLoader(CheckpointLoader):
    """MONAI's ``CheckpointLoader`` for resuming training, whose failures name the checkpoint and what is wrong.

    The file is checked when the loader is built, before any data is loaded (missing, empty, truncated, not a
    PyTorch checkpoint); a checkpoint that loads but does not fit the run (another network, missing entries) is
    reported when it is restored. Either way as an :class:`~scripts.errors.InputDataError`. Arguments as for
    ``CheckpointLoader``; an empty ``load_path`` means nothing to resume (the configs then do not attach it).
    """

    def __init__(self, load_path: str, load_dict: dict, **kwargs: Any) -> None:
        super().__init__(load_path, load_dict, **kwargs)
        if load_path:
            file = Path(load_path)
            problem = checkpoint_file_problem(file) if file.is_file() else "checkpoint file not found"
            if problem is not None:
                raise InputDataError(file, f"cannot resume training from it: {problem}")

    def __call__(self, engine: Engine) -> None:
        """Restore the run (see ``CheckpointLoader``), turning any failure into an error that names the file."""
        try:
            super().__call__(engine)
        except Exception as error:
            file = Path(self.load_path)
            unreadable = isinstance(error, (EOFError, pickle.UnpicklingError)) or "zip archive" in str(error)
            problem = unreadable_checkpoint_problem(file, error) if unreadable else _one_line(error)
            raise InputDataError(file, f"cannot resume training from it: {problem}") from error
