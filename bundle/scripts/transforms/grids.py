# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Voxel grids (affine + shape): whether two are the same, and trilinear resampling of a volume onto another."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import SpatialResample


def _corner_centres(shape: Sequence[int]) -> np.ndarray:
    """Voxel indices of the 8 corner voxel centres of a 3D grid, shape (8, 4) homogeneous."""
    return np.array([[i, j, k, 1.0] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1) for k in (0, shape[2] - 1)])


def voxel_spacing(affine: np.ndarray) -> np.ndarray:
    """Voxel size in mm along each array axis (column norms of the affine's 3x3 part)."""
    return np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)


def same_grid(
    affine_a: np.ndarray, shape_a: Sequence[int], affine_b: np.ndarray, shape_b: Sequence[int], tolerance: float
) -> bool:
    """Whether two 3D grids coincide: equal shapes, and corner voxel centres at most ``tolerance`` voxels apart.

    ``tolerance`` is a fraction of the smallest voxel size of grid ``a``; it absorbs float32 header rounding.
    """
    if tuple(int(s) for s in shape_a) != tuple(int(s) for s in shape_b):
        return False
    corners = _corner_centres(shape_a)
    world_a = corners @ np.asarray(affine_a, dtype=np.float64).T
    world_b = corners @ np.asarray(affine_b, dtype=np.float64).T
    largest_shift = np.linalg.norm(world_a[:, :3] - world_b[:, :3], axis=1).max()
    return bool(largest_shift <= tolerance * voxel_spacing(affine_a).min())


def inside_field_of_view(
    source_affine: np.ndarray, source_shape: Sequence[int], target_affine: np.ndarray, target_shape: Sequence[int]
) -> torch.Tensor:
    """Boolean [X, Y, Z] mask of the target voxels whose centres lie inside the source volume (voxel edges included)."""
    target_to_source = np.linalg.inv(np.asarray(source_affine, dtype=np.float64)) @ np.asarray(
        target_affine, dtype=np.float64
    )
    i, j, k = (torch.arange(int(n), dtype=torch.float64) for n in target_shape)
    inside = torch.ones(tuple(int(n) for n in target_shape), dtype=torch.bool)
    for row in range(3):
        a, b, c, offset = target_to_source[row]
        # Source coordinate along ``row``, split into an (i, j) plane and a k line so only one full-size sum is made.
        plane = (a * i[:, None] + b * j[None, :] + offset).to(torch.float32)
        coordinate = plane[:, :, None] + (c * k).to(torch.float32)[None, None, :]
        inside &= (coordinate >= -0.5) & (coordinate <= source_shape[row] - 0.5)
    return inside


def resample_onto_grid(volume: MetaTensor, target_affine: np.ndarray, target_shape: Sequence[int]) -> torch.Tensor:
    """Trilinearly resample a channel-first ``volume`` [C, X, Y, Z] onto a target grid; returns [C, *target_shape].

    Target voxels whose centres fall inside the source volume's field of view (voxel edges included) get the
    interpolated value, the last half voxel clamped to the edge value; voxels outside it get 0 (no uptake).
    """
    source_affine = volume.affine.numpy()
    source_shape = tuple(volume.shape[1:])
    resampler = SpatialResample(mode="bilinear", padding_mode="border", align_corners=False, dtype=torch.float32)
    resampled = resampler(
        volume, dst_affine=torch.as_tensor(target_affine, dtype=torch.float64), spatial_size=list(target_shape)
    )
    inside = inside_field_of_view(source_affine, source_shape, target_affine, target_shape)
    return torch.as_tensor(resampled, dtype=torch.float32) * inside
