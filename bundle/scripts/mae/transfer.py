# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Load a pretrained MAE encoder (residual stages and xLSTM layers) into the segmentation network."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from scripts.errors import InputDataError
from scripts.mae.encoder_checkpoint import read_encoder_tensors
from scripts.mae.keys import unwrap_parallel
from scripts.mae.model import encoder_summary
from torch import nn

logger = logging.getLogger(__name__)


def _names(names: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


@dataclass
class EncoderTransferReport:
    """What :func:`load_pretrained_encoder` did.

    Attributes:
        checkpoint: the file read.
        loaded: network tensors overwritten from the checkpoint (all under the encoder prefix).
        missing: network encoder tensors the checkpoint lacks (kept as initialised; only if not ``require_full``).
        unexpected: checkpoint encoder tensors the network has no place for (ignored; only if not ``require_full``).
        left: network tensors outside the encoder (the decoder), kept as initialised.
    """

    checkpoint: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    @property
    def num_loaded(self) -> int:
        """How many tensors were loaded."""
        return len(self.loaded)

    @property
    def complete(self) -> bool:
        """Whether the checkpoint covered the network's encoder exactly."""
        return not self.missing and not self.unexpected

    def summary(self) -> str:
        """One line for the log."""
        text = (
            f"loaded {self.num_loaded} encoder tensors from {self.checkpoint}; "
            f"{len(self.left)} non-encoder tensors left as initialised"
        )
        if self.missing:
            text += f"; {len(self.missing)} encoder tensors NOT in the checkpoint: {_names(self.missing)}"
        if self.unexpected:
            text += f"; {len(self.unexpected)} checkpoint tensors ignored: {_names(self.unexpected)}"
        return text


def load_pretrained_encoder(
    network: nn.Module,
    checkpoint_path: str | os.PathLike,
    require_full: bool = True,
    map_location: str | torch.device = "cpu",
) -> EncoderTransferReport:
    """Copy the pretrained encoder tensors of a checkpoint into ``network`` (decoder untouched).

    Every tensor under the network's ``encoder_prefix`` (``"encoder."``: stem, residual stages, xLSTM layers)
    is matched by name. Accepted files: see :mod:`scripts.mae.encoder_checkpoint`.

    Args:
        network: the segmentation network (``BiXLSTMResUNet``; DDP-wrapped is fine).
        checkpoint_path: encoder-only checkpoint, or a full MAE (or segmentation) checkpoint.
        require_full: fail unless the checkpoint covers every network encoder tensor and has no extra ones;
            with ``False`` the matching tensors are loaded and the rest is reported (and logged as a warning).
        map_location: where ``torch.load`` puts the tensors before they are copied.

    Returns:
        The report of loaded, missing, unexpected and untouched tensors.

    Raises:
        InputDataError: the file is missing, is not an MAE/encoder checkpoint, any shared tensor differs in shape
            (always), or, with ``require_full``, the encoder is not exactly covered; the message names the file
            and the tensors.
    """
    net = unwrap_parallel(network)
    prefix = getattr(net, "encoder_prefix", "encoder.")
    own = {key: value for key, value in net.state_dict().items() if key.startswith(prefix)}
    if not own:
        raise ValueError(f"{type(net).__name__} has no '{prefix}*' tensors to load a pretrained encoder into")
    tensors, saved_summary = read_encoder_tensors(checkpoint_path, prefix, map_location)
    path = str(checkpoint_path)
    shapes_hint = _summary_hint(saved_summary, net)

    mismatched = [
        f"{key} (checkpoint {tuple(tensors[key].shape)}, network {tuple(value.shape)})"
        for key, value in own.items()
        if key in tensors and tensors[key].shape != value.shape
    ]
    if mismatched:
        raise InputDataError(
            path,
            f"the pretrained encoder does not fit the network: {len(mismatched)} tensor(s) differ in shape: "
            f"{_names(mismatched, 4)}{shapes_hint}",
        )
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if require_full and (missing or unexpected):
        problems = []
        if missing:
            problems.append(
                f"{len(missing)} of the network's {len(own)} encoder tensors are missing: {_names(missing)}"
            )
        if unexpected:
            problems.append(
                f"{len(unexpected)} checkpoint encoder tensors have no place in the network: {_names(unexpected)}"
            )
        raise InputDataError(
            path,
            f"the pretrained encoder does not cover the network's encoder ({'; '.join(problems)}){shapes_hint}; "
            "pass require_full=False to load the matching tensors anyway",
        )
    loadable = {key: tensors[key] for key in own if key in tensors}
    net.load_state_dict(loadable, strict=False)
    report = EncoderTransferReport(
        checkpoint=path,
        loaded=sorted(loadable),
        missing=missing,
        unexpected=unexpected,
        left=sorted(key for key in net.state_dict() if not key.startswith(prefix)),
    )
    (logger.info if report.complete else logger.warning)(report.summary())
    return report


def _summary_hint(saved_summary: dict[str, Any] | None, net: nn.Module) -> str:
    """``"; checkpoint encoder {...}, network encoder {...}"`` where both are known and differ, else ``""``."""
    encoder = getattr(net, "encoder", None)
    if not saved_summary or encoder is None:
        return ""
    try:
        current = encoder_summary(encoder)
    except AttributeError:
        return ""
    differing = {
        key: (saved_summary.get(key), value) for key, value in current.items() if saved_summary.get(key) != value
    }
    if not differing:
        return ""
    details = ", ".join(f"{key}: checkpoint {saved} vs network {now}" for key, (saved, now) in differing.items())
    return f" [{details}]"


class PretrainedEncoderLoader:
    """Ignite handler that loads a pretrained encoder into the network when fine-tuning starts.

    Attach it to the trainer (``Events.STARTED``). It does nothing when ``checkpoint`` is empty or ``None``
    (training from scratch) and when the run resumes (iteration > 0 at start, i.e. a ``CheckpointLoader``
    restored the trainer before it): resumed weights win. If it runs before such a loader, the loader simply
    overwrites the encoder again. A missing checkpoint file is reported at construction, before any data loads.

    Config use, in ``train.json`` (e.g. a ``pretrained_encoder`` key overridable from the command line)::

        {"_target_": "scripts.mae.PretrainedEncoderLoader", "network": "@network",
         "checkpoint": "@pretrained_encoder"}

    Args:
        network: the segmentation network (DDP-wrapped is fine).
        checkpoint: the MAE/encoder checkpoint, or ``""``/``None`` for none.
        require_full: see :func:`load_pretrained_encoder`.
        map_location: see :func:`load_pretrained_encoder`.
    """

    def __init__(
        self,
        network: nn.Module,
        checkpoint: str | os.PathLike | None,
        require_full: bool = True,
        map_location: str | torch.device = "cpu",
    ) -> None:
        self.network = network
        self.checkpoint = str(checkpoint) if checkpoint else ""
        if self.checkpoint and not Path(self.checkpoint).is_file():
            raise InputDataError(self.checkpoint, "pretrained encoder checkpoint not found")
        self.require_full, self.map_location = require_full, map_location
        self.report: EncoderTransferReport | None = None

    def attach(self, engine: Engine) -> None:
        """Load on ``Events.STARTED``."""
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine | None = None) -> EncoderTransferReport | None:
        """Load now (unless there is no checkpoint or ``engine`` resumed); returns the report or ``None``."""
        if not self.checkpoint:
            logger.info("no pretrained encoder given: the network trains from its initialisation")
            return None
        if engine is not None and engine.state.iteration > 0:
            logger.info(
                "resumed at iteration %d: keeping the resumed weights, not %s", engine.state.iteration, self.checkpoint
            )
            return None
        self.report = load_pretrained_encoder(self.network, self.checkpoint, self.require_full, self.map_location)
        return self.report
