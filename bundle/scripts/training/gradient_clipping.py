# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Clip the global gradient norm of a MONAI ``SupervisedTrainer`` between its backward pass and optimizer step.

nnU-Net clips every step to a global L2 norm of 12. MONAI's trainer fires ``IterationEvents.BACKWARD_COMPLETED``
after ``backward()`` and before ``optimizer.step()`` (``scaler.step`` under AMP), so the clipping runs there.
Under AMP the gradients are first unscaled with the trainer's own ``GradScaler`` (``scaler.unscale_``), so the
norm is that of the true gradients; an overflowing AMP step keeps its usual treatment (the scaler skips it), but
``max_skipped_steps`` skipped steps in a row mean the gradients are broken, not overflowing (the scale would shrink
towards zero and training stall), and stop training. Without AMP a non-finite gradient norm would turn every weight
into NaN, so it stops training at once.
"""

from __future__ import annotations

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from scripts.training.non_finite import NonFiniteTrainingError, training_position

GRAD_NORM_KEY = "grad_norm"


class ClipGradientNorm:
    """Clip the trainer network's gradients to a global ``norm_type`` norm of ``max_norm`` at every step.

    The norm before clipping is kept in ``engine.state.output["grad_norm"]``.

    Args:
        max_norm: the largest allowed gradient norm; ``0`` or ``None`` disables clipping (nothing is attached).
        norm_type: the norm's order (2 = Euclidean over all gradients together, as nnU-Net).
        max_skipped_steps: under AMP, stop after this many consecutive steps with non-finite gradients.
    """

    def __init__(self, max_norm: float | None = 12.0, norm_type: float = 2.0, max_skipped_steps: int = 30) -> None:
        if max_norm is not None and not max_norm >= 0:
            raise ValueError(f"max_norm (grad_clip_norm) must be >= 0, or 0/null to disable clipping, got {max_norm}.")
        if max_skipped_steps < 1:
            raise ValueError(f"max_skipped_steps must be at least 1, got {max_skipped_steps}.")
        self.max_norm = float(max_norm) if max_norm else None
        self.norm_type = float(norm_type)
        self.max_skipped_steps = int(max_skipped_steps)
        self.skipped_steps = 0

    def attach(self, engine: SupervisedTrainer) -> None:
        """Clip after every backward pass of ``engine`` (nothing to do when clipping is disabled)."""
        if self.max_norm is None:
            return
        if getattr(engine, "accumulation_steps", 1) > 1:
            raise ValueError(
                "gradient clipping does not support gradient accumulation (accumulation_steps > 1): it would clip "
                "partial sums; set grad_clip_norm to 0 or accumulation_steps to 1."
            )
        engine.add_event_handler(IterationEvents.BACKWARD_COMPLETED, self)

    def __call__(self, engine: SupervisedTrainer) -> None:
        """Unscale (under AMP), clip, and record the norm before clipping."""
        scaler = engine.scaler if engine.amp else None
        if scaler is not None:
            scaler.unscale_(engine.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(engine.network.parameters(), self.max_norm, self.norm_type)
        engine.state.output[GRAD_NORM_KEY] = norm.detach()
        finite = bool(torch.isfinite(norm))
        if scaler is None and not finite:
            raise NonFiniteTrainingError(
                f"training stopped: the gradient norm is {norm.item()} at {training_position(engine)}, before the "
                "optimizer step, so the weights were not updated with it; the last checkpoint and the best model are "
                "intact. Lower the learning rate and resume."
            )
        self.skipped_steps = 0 if finite else self.skipped_steps + 1
        if self.skipped_steps >= self.max_skipped_steps:
            raise NonFiniteTrainingError(
                f"training stopped: the gradients were NaN/Inf in {self.skipped_steps} AMP steps in a row, up to "
                f"{training_position(engine)}; the gradient scaler skipped them all (its scale is now "
                f"{scaler.get_scale():g}), so the network no longer learns. The last checkpoint and the best model "
                "are intact."
            )
