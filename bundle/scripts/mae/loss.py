# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Masked reconstruction loss: MSE on hidden voxels, per channel, over the channels a study really has."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from scripts.mae.keys import MASK_KEY, TARGET_KEY, VALID_KEY
from torch import nn


class MaskedReconstructionLoss(nn.Module):
    """Mean squared error over the hidden voxels of each valid channel, averaged over channels.

    For channel ``c`` the loss is ``sum(w * (pred - target)^2) / sum(w)`` over the batch, with weight
    ``w = valid[b, c] * (mask + visible_weight * (1 - mask))``; the result is the mean over the channels with
    any weight. A channel flagged invalid (the PET of a CT-only study) gives neither loss nor gradient, and
    channels count equally however many CT-only samples a batch holds. With no weighted voxel at all the loss
    is a zero that still backpropagates.

    Call it as ``loss(pred, target, mask, channel_valid)``, or as an ignite ``SupervisedTrainer`` loss
    ``loss(pred, {"target": ..., "mask": ..., "channel_valid": ...})`` (what :class:`MAEPrepareBatch` returns
    as the label). Shapes: ``pred``/``target`` [B, C, ...], ``mask`` [B, C or 1, ...] (1 = hidden),
    ``channel_valid`` [B, C] (optional: all valid).

    Args:
        visible_weight: weight of the visible voxels relative to hidden ones; 0 scores hidden voxels only
            (nnssl ``MAEMSELoss``); a small value such as 0.1 also asks the network to reproduce its input.
    """

    def __init__(self, visible_weight: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= visible_weight <= 1.0:
            raise ValueError(f"visible_weight must be in [0, 1], got {visible_weight}")
        self.visible_weight = float(visible_weight)

    def per_channel(
        self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, channel_valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The loss of each channel, shape [C]; NaN for a channel without any weighted voxel in the batch."""
        weights = self._weights(pred, target, mask, channel_valid)
        squared_error = (pred.float() - target.float()).square()
        reduce_dims = [0, *range(2, pred.ndim)]
        total = (weights * squared_error).sum(dim=reduce_dims)
        count = weights.sum(dim=reduce_dims)
        return torch.where(count > 0, total / count.clamp_min(1e-12), torch.full_like(total, float("nan")))

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor | Mapping[str, torch.Tensor],
        mask: torch.Tensor | None = None,
        channel_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The scalar loss (see the class docstring for the accepted forms of ``target``)."""
        if isinstance(target, Mapping):
            missing = [key for key in (TARGET_KEY, MASK_KEY) if key not in target]
            if missing:
                raise KeyError(f"the target dictionary lacks {missing}; it has {sorted(target)}")
            target, mask, channel_valid = target[TARGET_KEY], target[MASK_KEY], target.get(VALID_KEY)
        if mask is None:
            raise ValueError("MaskedReconstructionLoss needs the mask of hidden voxels (1 = hidden)")
        losses = self.per_channel(pred, target, mask, channel_valid)
        scored = ~torch.isnan(losses)
        if not bool(scored.any()):
            return pred.sum() * 0.0
        return losses[scored].mean()

    def _weights(
        self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, channel_valid: torch.Tensor | None
    ) -> torch.Tensor:
        if isinstance(pred, (list, tuple)):
            raise TypeError("pred is a list (deep supervision?); the reconstruction network returns one tensor")
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        if mask.ndim != pred.ndim or mask.shape[0] != pred.shape[0] or mask.shape[1] not in (1, pred.shape[1]):
            raise ValueError(f"mask {tuple(mask.shape)} does not fit pred {tuple(pred.shape)} ([B, C or 1, ...])")
        mask = mask.float()
        weights = mask + self.visible_weight * (1.0 - mask) if self.visible_weight else mask
        weights = weights.expand(pred.shape)
        if channel_valid is None:
            return weights
        valid = channel_valid.float().reshape(pred.shape[0], -1)
        if valid.shape[1] != pred.shape[1]:
            raise ValueError(f"channel_valid {tuple(channel_valid.shape)} does not fit {pred.shape[1]} channels")
        return weights * valid.view(*valid.shape, *([1] * (pred.ndim - 2)))
