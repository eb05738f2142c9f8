# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Crop a PET/CT study to the body, found on the CT channel, invertibly (a ``CropForegroundd`` specialisation)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.config import KeysCollection
from monai.transforms import CropForegroundd
from scripts.data.pet_ct_files import CT_CHANNEL

# CT value above which a voxel counts as body (soft tissue, bone, the table); air and lung lie below.
BODY_THRESHOLD_HU = -500.0
# Margin around the body box, in voxels of the grid the crop runs on (about 8-12 mm after ``Spacingd``).
BODY_MARGIN_VOXELS = 4


class AboveThreshold:
    """Foreground selector for ``CropForeground``: voxels above ``threshold``; everything if none is.

    A plain class rather than a lambda so that the transform pickles (multi-process data loading). Selecting
    everything when no voxel passes makes a study without body keep its full extent instead of an empty box.
    """

    def __init__(self, threshold: float = BODY_THRESHOLD_HU) -> None:
        self.threshold = float(threshold)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Boolean mask of ``image`` > threshold, or all ``True`` when that mask is empty."""
        mask = image > self.threshold
        return mask if bool(mask.any()) else torch.ones_like(mask)


class CropBodyd(CropForegroundd):
    """Crop ``keys`` to the bounding box of the body in the CT channel of ``source_key``, plus a margin.

    The body is every voxel above ``threshold_hu`` in channel ``channel`` (CT, in HU, so run this before
    intensity normalisation). The box is the plain bounding box, not the largest component: arms lying apart
    from the trunk stay inside. The box never leaves the image (no padding), and the crop is recorded so
    ``Invertd`` pads a prediction back to the uncropped grid.

    Args:
        keys: keys to crop, e.g. ``["image", "label"]``.
        source_key: key of the 2-channel image the body is found on.
        channel: channel holding the CT.
        threshold_hu: body threshold in HU.
        margin: voxels added on each side of the box (one value or one per axis).
        k_divisible: make each cropped size a multiple of this (may then pad beyond the image, with 0).
        allow_missing_keys: do not raise when a key (e.g. the label at inference) is absent.
    """

    def __init__(
        self,
        keys: KeysCollection,
        source_key: str = "image",
        channel: int = CT_CHANNEL,
        threshold_hu: float = BODY_THRESHOLD_HU,
        margin: Sequence[int] | int = BODY_MARGIN_VOXELS,
        k_divisible: Sequence[int] | int = 1,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(
            keys,
            source_key=source_key,
            select_fn=AboveThreshold(threshold_hu),
            channel_indices=channel,
            margin=margin,
            allow_smaller=True,
            k_divisible=k_divisible,
            mode="constant",
            allow_missing_keys=allow_missing_keys,
        )
