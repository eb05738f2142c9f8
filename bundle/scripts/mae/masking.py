# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Random cubic-block masking on a regular grid, as a MONAI dictionary transform for MAE pretraining.

Defaults follow nnssl's dense MAE (``BaseMAETrainer``): 16-voxel blocks, 75 % of them hidden, hidden voxels set
to 0 after intensity normalisation (0 is the mean of z-scored CT and PET, so no artificial intensity edges).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable
from scripts.mae.keys import MASK_KEY, TARGET_KEY, VALID_KEY

DEFAULT_BLOCK_SIZE = 16
DEFAULT_MASK_RATIO = 0.75

BlockSize = int | Sequence[int]
RandomSource = np.random.RandomState | np.random.Generator


def block_triple(block_size: BlockSize) -> tuple[int, int, int]:
    """Reads a block size given as one int (a cube) or three ints (X, Y, Z), all positive."""
    sizes = list(block_size) if isinstance(block_size, (list, tuple)) else [block_size] * 3
    if len(sizes) != 3 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"block_size must be a positive int or 3 positive ints, got {block_size!r}")
    return tuple(sizes)  # type: ignore[return-value]


def block_grid_shape(spatial_shape: Sequence[int], block_size: BlockSize) -> tuple[int, int, int]:
    """Blocks per axis: the grid starts at voxel 0 and a last, partial block covers any remainder."""
    sizes = block_triple(block_size)
    if len(spatial_shape) != 3:
        raise ValueError(f"expected a 3D spatial shape, got {tuple(spatial_shape)}")
    return tuple(math.ceil(extent / size) for extent, size in zip(spatial_shape, sizes, strict=True))  # type: ignore


def masked_block_count(num_blocks: int, ratio: float) -> int:
    """How many of ``num_blocks`` blocks a ``ratio`` hides: ``round(ratio * num_blocks)``, kept in [1, n - 1].

    The clamp keeps at least one block hidden (something to score) and one visible (something to see).
    """
    if num_blocks < 2:
        raise ValueError(f"the block grid has {num_blocks} block(s); masking needs at least 2 (use smaller blocks)")
    return min(max(round(ratio * num_blocks), 1), num_blocks - 1)


def block_grid_mask(
    spatial_shape: Sequence[int],
    block_size: BlockSize = DEFAULT_BLOCK_SIZE,
    ratio: float = DEFAULT_MASK_RATIO,
    rng: RandomSource | None = None,
) -> np.ndarray:
    """A boolean [X, Y, Z] mask, True on hidden voxels: exactly :func:`masked_block_count` grid blocks are hidden.

    Args:
        spatial_shape: the volume's (X, Y, Z).
        block_size: edge of the cubic blocks in voxels (or 3 edges).
        ratio: fraction of the grid's blocks to hide, in (0, 1).
        rng: numpy random source (a transform's ``self.R``); a fresh unseeded one if ``None``.
    """
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be in (0, 1), got {ratio}")
    rng = np.random.default_rng() if rng is None else rng
    sizes = block_triple(block_size)
    grid = block_grid_shape(spatial_shape, sizes)
    num_blocks = int(np.prod(grid))
    hidden = np.zeros(num_blocks, dtype=bool)
    hidden[rng.permutation(num_blocks)[: masked_block_count(num_blocks, ratio)]] = True
    voxels = hidden.reshape(grid)
    for axis, size in enumerate(sizes):
        voxels = voxels.repeat(size, axis=axis)
    return voxels[: spatial_shape[0], : spatial_shape[1], : spatial_shape[2]]


class RandBlockMaskd(Randomizable, MapTransform):
    """Hide random grid blocks of the image for MAE pretraining, keeping the clean image as the target.

    Put it after the spatial augmentation (so input and target are augmented alike) and after the intensity
    normalisation. On return:

    - ``data[key]``: the masked input; hidden voxels, dropped channels and missing (invalid) channels are 0;
    - ``data[target_key]``: the clean image, missing channels set to 0;
    - ``data[mask_key]``: float [C, X, Y, Z], 1 on the voxels the loss scores (hidden ones; a whole dropped
      channel), 0 elsewhere. Per channel, so modality dropout and per-channel masks fit one layout;
    - ``data[valid_key]``: float [C] channel flags, copied from the data if present (e.g. set by
      :class:`~scripts.mae.LoadPretrainingStudyd` for CT-only studies), else all ones.

    The hidden fraction of the block grid is exact: ``round(ratio * blocks)`` blocks per draw (see
    :func:`masked_block_count`); the voxel fraction equals it when every axis is a multiple of the block size.

    Args:
        keys: the one image key, channel-first [C, X, Y, Z].
        block_size: cubic block edge in voxels (or 3 edges). nnssl default 16; try 8 for small PET lesions.
        ratio: fraction of blocks hidden, in (0, 1). nnssl default 0.75 (AMAES and SparK use 0.6).
        target_key: key for the clean image.
        mask_key: key for the per-channel loss mask.
        valid_key: key of the per-channel validity flags (read if present, always written).
        independent_channels_prob: probability that a sample draws one independent mask per channel instead of
            one mask shared by all channels (Yucca-style; 0 = always shared, as nnssl and AMAES).
        modality_dropout_prob: probability that a sample with at least two valid channels has one of them,
            chosen uniformly, zeroed in the input and reconstructed entirely (M3AE-style cross-modal
            reconstruction; the notes suggest 0.25). The other channel keeps its block mask.
        allow_missing_keys: do not raise when the image key is absent.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        block_size: BlockSize = DEFAULT_BLOCK_SIZE,
        ratio: float = DEFAULT_MASK_RATIO,
        target_key: str = TARGET_KEY,
        mask_key: str = MASK_KEY,
        valid_key: str = VALID_KEY,
        independent_channels_prob: float = 0.0,
        modality_dropout_prob: float = 0.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError(f"RandBlockMaskd masks one image key, got {list(self.keys)}")
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"ratio must be in (0, 1), got {ratio}")
        for name, probability in (
            ("independent_channels_prob", independent_channels_prob),
            ("modality_dropout_prob", modality_dropout_prob),
        ):
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {probability}")
        self.block_size = block_triple(block_size)
        self.ratio = float(ratio)
        self.target_key, self.mask_key, self.valid_key = target_key, mask_key, valid_key
        self.independent_channels_prob = float(independent_channels_prob)
        self.modality_dropout_prob = float(modality_dropout_prob)
        self.hidden: np.ndarray | None = None  # bool [C, X, Y, Z] of the last draw
        self.dropped_channel: int | None = None

    def randomize(self, spatial_shape: Sequence[int], valid: np.ndarray) -> None:
        """Draws the per-channel hidden-voxel mask and the dropped channel (if any) for one sample."""
        num_channels = len(valid)
        valid_channels = np.flatnonzero(valid)
        drop = self.R.random_sample() < self.modality_dropout_prob
        independent = self.R.random_sample() < self.independent_channels_prob
        if independent:
            masks = [block_grid_mask(spatial_shape, self.block_size, self.ratio, self.R) for _ in range(num_channels)]
        else:
            masks = [block_grid_mask(spatial_shape, self.block_size, self.ratio, self.R)] * num_channels
        self.hidden = np.stack(masks)
        self.dropped_channel = None
        if drop and len(valid_channels) >= 2:
            self.dropped_channel = int(self.R.choice(valid_channels))
            self.hidden[self.dropped_channel] = True

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Masks the image of one sample; see the class docstring for the keys written."""
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key] if isinstance(d[key], torch.Tensor) else torch.as_tensor(d[key])
            if image.ndim != 4:
                raise ValueError(f"{key!r} must be channel-first [C, X, Y, Z], got shape {tuple(image.shape)}")
            valid = self._channel_flags(d.get(self.valid_key), image.shape[0])
            self.randomize(tuple(image.shape[1:]), valid.numpy())
            mask = torch.from_numpy(self.hidden).to(device=image.device, dtype=image.dtype)
            present = valid.to(device=image.device, dtype=image.dtype).view(-1, 1, 1, 1)
            target = image * present  # a new tensor: missing channels are 0 in input and target alike
            d[self.target_key] = target
            d[key] = target * (1 - mask)
            d[self.mask_key] = mask
            d[self.valid_key] = valid
        return d

    def _channel_flags(self, given: Any, num_channels: int) -> torch.Tensor:
        if given is None:
            return torch.ones(num_channels, dtype=torch.float32)
        valid = torch.as_tensor(given, dtype=torch.float32).reshape(-1)
        if valid.numel() != num_channels or not bool(((valid == 0) | (valid == 1)).all()):
            raise ValueError(f"{self.valid_key!r} must hold {num_channels} flags of 0 or 1, got {given!r}")
        return valid
