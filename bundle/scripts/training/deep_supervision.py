# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Deep-supervision loss weights as nnU-Net sets them.

Level ``i`` (0 = full resolution) weighs ``1 / 2**i``, the lowest-resolution level weighs 0, and the weights
are normalised to sum to 1. Small lesions vanish from the coarsest target (nearest-neighbour downsampling),
so a non-zero weight there rewards predicting "no lesion" everywhere; the normalisation keeps the loss on
the scale of one Dice + CE term whatever the depth (see the model card, bundle/docs/README.md).
"""

from __future__ import annotations


def nnunet_weights(levels: int) -> list[float]:
    """Weights of ``levels`` deep-supervision outputs, full resolution first (one level: ``[1.0]``)."""
    if levels < 1:
        raise ValueError(f"deep supervision needs at least one output level, got {levels}")
    if levels == 1:
        return [1.0]
    raw = [0.5**level for level in range(levels - 1)] + [0.0]
    total = sum(raw)
    return [weight / total for weight in raw]
