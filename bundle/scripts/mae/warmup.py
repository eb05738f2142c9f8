# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Fine-tuning warm-up for a pretrained encoder: keep it frozen, or at a lower learning rate, for N epochs."""

from __future__ import annotations

import logging
from typing import Any

import torch
from ignite.engine import Engine, Events
from scripts.mae.keys import unwrap_parallel
from torch import nn

WARMUP_MODES = ("freeze", "lr_scale")
ENCODER_GROUP, REST_GROUP = "encoder", "rest"

logger = logging.getLogger(__name__)


def encoder_param_groups(network: nn.Module) -> list[dict[str, Any]]:
    """Optimizer parameter groups ``[{"name": "encoder", ...}, {"name": "rest", ...}]`` of a network.

    Both groups take the optimizer's own ``lr`` and other settings, so training is unchanged; the split only
    lets :class:`EncoderWarmup` scale the encoder's learning rate. Config use::

        "optimizer": {"_target_": "torch.optim.SGD", "params": "$scripts.mae.encoder_param_groups(@network)", ...}
    """
    net = unwrap_parallel(network)
    encoder_params = list(net.encoder.parameters())
    encoder_ids = {id(parameter) for parameter in encoder_params}
    rest = [parameter for parameter in net.parameters() if id(parameter) not in encoder_ids]
    groups = [{"params": encoder_params, "name": ENCODER_GROUP}]
    if rest:
        groups.append({"params": rest, "name": REST_GROUP})
    return groups


class EncoderWarmup:
    """Ignite handler that freezes the encoder, or scales its learning rate, for the first ``epochs`` epochs.

    From epoch ``epochs + 1`` on (and when training ends) everything is restored.

    - ``"freeze"``: encoder parameters get ``requires_grad = False`` (their gradients are cleared, so no
      optimizer, weight decay included, touches them), then their own setting back. Under DDP this needs
      ``find_unused_parameters=True``; prefer ``"lr_scale"`` there.
    - ``"lr_scale"``: needs the optimizer built from :func:`encoder_param_groups`. Before every iteration the
      encoder group's lr is set to ``lr_scale`` times the other group's (scheduled) lr; afterwards it equals it.
      Works with any epoch- or iteration-level scheduler.

    Config use (fine-tuning ``train.json``)::

        {"_target_": "scripts.mae.EncoderWarmup", "network": "@network", "optimizer": "@optimizer",
         "epochs": 10, "mode": "freeze"}

    Args:
        network: the segmentation network (DDP-wrapped is fine); its ``encoder`` is warmed up.
        optimizer: the trainer's optimizer (needed for ``"lr_scale"``).
        epochs: warm-up epochs; 0 disables the handler.
        mode: ``"freeze"`` or ``"lr_scale"``.
        lr_scale: the encoder's learning-rate factor in ``"lr_scale"`` mode, in [0, 1].
    """

    def __init__(
        self,
        network: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        epochs: int = 0,
        mode: str = "freeze",
        lr_scale: float = 0.1,
    ) -> None:
        if mode not in WARMUP_MODES:
            raise ValueError(f"mode={mode!r} is not a warm-up mode; use one of {WARMUP_MODES}")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        if not 0.0 <= lr_scale <= 1.0:
            raise ValueError(f"lr_scale must be in [0, 1], got {lr_scale}")
        self.encoder = unwrap_parallel(network).encoder
        self.epochs, self.mode, self.lr_scale = epochs, mode, float(lr_scale)
        self.active = False
        self._frozen: list[nn.Parameter] = []
        self._encoder_groups: list[dict[str, Any]] = []
        self._reference_group: dict[str, Any] | None = None
        if mode == "lr_scale" and epochs > 0:
            self._find_groups(optimizer)

    def _find_groups(self, optimizer: torch.optim.Optimizer | None) -> None:
        if optimizer is None:
            raise ValueError("mode='lr_scale' needs the optimizer")
        encoder_ids = {id(parameter) for parameter in self.encoder.parameters()}
        hint = "build the optimizer with params=scripts.mae.encoder_param_groups(network)"
        for group in optimizer.param_groups:
            inside = [id(parameter) in encoder_ids for parameter in group["params"]]
            if all(inside):
                self._encoder_groups.append(group)
            elif any(inside):
                raise ValueError(f"an optimizer parameter group mixes encoder and other parameters; {hint}")
            elif self._reference_group is None:
                self._reference_group = group
        if not self._encoder_groups or self._reference_group is None:
            raise ValueError(f"the optimizer needs one group of encoder parameters and one of the rest; {hint}")

    def attach(self, engine: Engine) -> None:
        """Check the epoch at every ``EPOCH_STARTED``, set the lr at every ``ITERATION_STARTED``, restore at end."""
        if self.epochs == 0:
            return
        engine.add_event_handler(Events.EPOCH_STARTED, self.epoch_started)
        engine.add_event_handler(Events.ITERATION_STARTED, self.iteration_started)
        engine.add_event_handler(Events.COMPLETED, self.end)

    def epoch_started(self, engine: Engine) -> None:
        """Warm up during epochs 1..``epochs`` (ignite counts from 1), restore from the next one on."""
        if engine.state.epoch <= self.epochs:
            self.begin()
        else:
            self.end()

    def iteration_started(self, engine: Engine | None = None) -> None:
        """In ``"lr_scale"`` mode during warm-up, derive the encoder lr from the scheduled lr of the rest."""
        if self.active and self.mode == "lr_scale":
            self._set_encoder_lr(self.lr_scale)

    def begin(self) -> None:
        """Freeze the encoder or scale its learning rate (idempotent)."""
        if self.active:
            return
        if self.mode == "freeze":
            self._frozen = [parameter for parameter in self.encoder.parameters() if parameter.requires_grad]
            for parameter in self._frozen:
                parameter.requires_grad_(False)
                parameter.grad = None
        else:
            self._set_encoder_lr(self.lr_scale)
        self.active = True
        logger.info("encoder warm-up (%s) for %d epoch(s)", self.mode, self.epochs)

    def end(self, engine: Engine | None = None) -> None:
        """Unfreeze the encoder / give it the full learning rate again (idempotent; also after a resume)."""
        if self.mode == "freeze":
            for parameter in self._frozen:
                parameter.requires_grad_(True)
            self._frozen = []
        elif self._reference_group is not None:
            self._set_encoder_lr(1.0)
        if self.active:
            logger.info("encoder warm-up over: the whole network trains at the full learning rate")
        self.active = False

    def _set_encoder_lr(self, factor: float) -> None:
        for group in self._encoder_groups:
            group["lr"] = self._reference_group["lr"] * factor
