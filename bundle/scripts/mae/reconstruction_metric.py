# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Held-out masked-reconstruction error as an ignite metric, for a ``SupervisedEvaluator`` in pretraining."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from ignite.metrics import Loss
from monai.utils import CommonKeys
from scripts.mae.keys import TARGET_KEY
from scripts.mae.loss import MaskedReconstructionLoss


def reconstruction_output(output: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(pred, {"target", "mask", "channel_valid"})`` from an engine output, batched or decollated."""
    if isinstance(output, Mapping):
        return output[CommonKeys.PRED], output[CommonKeys.LABEL]
    if isinstance(output, Sequence) and output and isinstance(output[0], Mapping):  # decollate=True
        pred = torch.stack([item[CommonKeys.PRED] for item in output])
        labels = [item[CommonKeys.LABEL] for item in output]
        return pred, {key: torch.stack([label[key] for label in labels]) for key in labels[0]}
    raise TypeError(f"expected an engine output dict or a list of them, got {type(output).__name__}")


class MaskedReconstructionMSE(Loss):
    """The :class:`MaskedReconstructionLoss` averaged over an evaluation run (batches weighted by size).

    Use with an evaluator whose ``prepare_batch`` is :class:`~scripts.mae.MAEPrepareBatch` and whose
    validation transforms include a seeded :class:`~scripts.mae.RandBlockMaskd`, e.g.
    ``"key_val_metric": {"val_masked_mse": {"_target_": "scripts.mae.MaskedReconstructionMSE"}}``. A sanity
    check on unseen volumes, not a proxy for fine-tuning quality (notes, section 5).

    Args:
        visible_weight: see :class:`MaskedReconstructionLoss`.
        device: where the running sums live.
    """

    def __init__(self, visible_weight: float = 0.0, device: str | torch.device = "cpu") -> None:
        super().__init__(
            MaskedReconstructionLoss(visible_weight=visible_weight),
            output_transform=reconstruction_output,
            batch_size=lambda label: len(label[TARGET_KEY]),
            device=device,
        )
