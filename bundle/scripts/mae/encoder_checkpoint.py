# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Encoder checkpoints: write the pretrained encoder on its own, and read encoder tensors from any checkpoint.

The encoder-only file is ``{"format": ENCODER_CHECKPOINT_FORMAT, "encoder": {"encoder.<name>": tensor, ...},
"encoder_summary": {...}, "network_config": {...} or None}``. Reading also accepts a plain state dict of an
:class:`~scripts.mae.MAEReconstructor` or :class:`~scripts.networks.BiXLSTMResUNet` (what ``CheckpointSaver``
writes for one object), the same nested under ``"model"``/``"network"``/``"state_dict"`` (several objects), and
DDP's ``module.`` prefix.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from scripts.atomic_io import atomic_path
from scripts.errors import InputDataError
from scripts.inference.checkpoints import DDP_PREFIX, STATE_DICT_KEYS, candidate_state_dicts, load_checkpoint_file
from scripts.mae.keys import unwrap_parallel
from scripts.mae.model import encoder_summary
from torch import nn

ENCODER_CHECKPOINT_FORMAT = "petct-bixlstm-mae-encoder/1"
PARALLEL_PREFIX = DDP_PREFIX

logger = logging.getLogger(__name__)


def encoder_checkpoint(model: nn.Module) -> dict[str, Any]:
    """The encoder-only checkpoint of an MAE or segmentation network (tensors detached, on the CPU)."""
    model = unwrap_parallel(model)
    if not hasattr(model, "encoder_state_dict"):
        raise TypeError(f"{type(model).__name__} has no encoder_state_dict(); pass an MAEReconstructor or network")
    return {
        "format": ENCODER_CHECKPOINT_FORMAT,
        "encoder": {key: value.detach().cpu() for key, value in model.encoder_state_dict().items()},
        "encoder_summary": encoder_summary(model.encoder),
        "network_config": getattr(model, "network_config", None),
    }


def save_encoder_checkpoint(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write :func:`encoder_checkpoint` of ``model`` to ``path`` atomically; returns the path."""
    checkpoint = encoder_checkpoint(model)
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
    logger.info("saved %d encoder tensors to %s", len(checkpoint["encoder"]), path)
    return Path(path)


class EncoderCheckpointSaver:
    """Ignite handler that writes the encoder-only checkpoint every ``interval`` epochs and when training ends.

    Config use, in the pretraining trainer's handlers (rank 0 only)::

        {"_target_": "scripts.mae.EncoderCheckpointSaver", "model": "@network",
         "save_path": "$@ckpt_dir + '/mae_encoder.pt'", "_disabled_": "@is_not_rank0"}

    Args:
        model: the :class:`~scripts.mae.MAEReconstructor` (DDP-wrapped is fine).
        save_path: the file written (overwritten each time).
        interval: epochs between saves.
    """

    def __init__(self, model: nn.Module, save_path: str | os.PathLike, interval: int = 1) -> None:
        if interval < 1:
            raise ValueError(f"interval must be a positive number of epochs, got {interval}")
        self.model, self.save_path, self.interval = model, Path(save_path), interval

    def attach(self, engine: Engine) -> None:
        """Save on every ``interval``-th ``EPOCH_COMPLETED`` and on ``COMPLETED``."""
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval), self)
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine | None = None) -> None:
        """Write the checkpoint now."""
        save_encoder_checkpoint(self.model, self.save_path)


def _encoder_entries(state: Mapping[Any, Any], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors of ``state`` under ``prefix`` (DDP's ``module.`` in front removed), keys keeping ``prefix``."""
    entries = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            continue
        name = key[len(PARALLEL_PREFIX) :] if key.startswith(PARALLEL_PREFIX + prefix) else key
        if name.startswith(prefix):
            entries[name] = value
    return entries


def _key_preview(mapping: Mapping[Any, Any], limit: int = 8) -> str:
    keys = [str(key) for key in mapping]
    return ", ".join(keys[:limit]) + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "") or "none"


def read_encoder_tensors(
    path: str | os.PathLike, prefix: str = "encoder.", map_location: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """The encoder tensors of a checkpoint file (keys ``<prefix>...``) and its encoder summary if it has one.

    Raises:
        InputDataError: the file is missing, is not a PyTorch checkpoint, or holds no ``<prefix>*`` tensors
            (e.g. a decoder-only or unrelated file); the message names the file.
    """
    checkpoint = load_checkpoint_file(path, map_location, missing="pretrained encoder checkpoint not found")
    if checkpoint.get("format") == ENCODER_CHECKPOINT_FORMAT:
        encoder = checkpoint.get("encoder")
        entries = _encoder_entries(encoder, prefix) if isinstance(encoder, Mapping) else {}
        if not entries:
            raise InputDataError(path, f"an encoder checkpoint without '{prefix}*' tensors (damaged?)")
        return entries, checkpoint.get("encoder_summary")
    entries: dict[str, torch.Tensor] = {}
    for candidate in candidate_state_dicts(checkpoint):
        entries = _encoder_entries(candidate, prefix)
        if entries:
            break
    if not entries:
        raise InputDataError(
            path,
            f"not an MAE or encoder checkpoint: no '{prefix}*' tensors at the top level or under "
            f"{list(STATE_DICT_KEYS)} (top-level keys: {_key_preview(checkpoint)})",
        )
    return entries, None
