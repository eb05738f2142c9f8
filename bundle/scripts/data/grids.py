# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Voxel grids (affine + shape): the one rule for "same grid", and the one resampling path (PET onto CT).

Same grid means: equal shapes, and the 8 corner voxel centres at most :data:`GRID_TOLERANCE_VOXELS` of the
smallest voxel size of the reference grid apart in world space (mm). One hundredth of a voxel (0.02-0.04 mm at
PET/CT voxel sizes) absorbs the float32 rounding of NIfTI headers, yet is far below any real misregistration.
Every stage (study checks in preparation, loading for training and inference, metrics, quantification,
figures) applies this rule, so a study cannot pass in one stage and fail in another.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import SpatialResample

# The one same-grid tolerance: corner voxel centres at most 1/100 of the smallest reference voxel size apart.
GRID_TOLERANCE_VOXELS = 0.01


def _corner_centres(shape: Sequence[int]) -> np.ndarray:
    """Voxel indices of the 8 corner voxel centres of a 3D grid, shape (8, 4) homogeneous."""
    return np.array([[i, j, k, 1.0] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1) for k in (0, shape[2] - 1)])


def voxel_spacing(affine: np.ndarray) -> np.ndarray:
    """Voxel size in mm along each array axis (column norms of the affine's 3x3 part)."""
    return np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)


def corner_shift_mm(affine_a: np.ndarray, shape: Sequence[int], affine_b: np.ndarray) -> float:
    """Largest world distance (mm) between the corner voxel centres of two affines over the same array shape."""
    corners = _corner_centres(shape)
    world_a = corners @ np.asarray(affine_a, dtype=np.float64).T
    world_b = corners @ np.asarray(affine_b, dtype=np.float64).T
    return float(np.linalg.norm(world_a[:, :3] - world_b[:, :3], axis=1).max())


def same_grid(
    affine_a: np.ndarray,
    shape_a: Sequence[int],
    affine_b: np.ndarray,
    shape_b: Sequence[int],
    tolerance: float = GRID_TOLERANCE_VOXELS,
) -> bool:
    """Whether grid ``b`` is grid ``a`` (the reference): equal 3D shapes, corner voxel centres close enough.

    ``tolerance`` is a fraction of the smallest voxel size of grid ``a``; keep the default (the module's rule)
    except to probe the rule itself.
    """
    shape_a, shape_b = tuple(int(s) for s in shape_a[:3]), tuple(int(s) for s in shape_b[:3])
    if shape_a != shape_b:
        return False
    return bool(corner_shift_mm(affine_a, shape_a, affine_b) <= tolerance * voxel_spacing(affine_a).min())


def grid_difference(affine_a: np.ndarray, shape_a: Sequence[int], affine_b: np.ndarray, shape_b: Sequence[int]) -> str:
    """Words for how grid ``b`` differs from grid ``a``, for error messages."""
    shape_a, shape_b = tuple(int(s) for s in shape_a[:3]), tuple(int(s) for s in shape_b[:3])
    if shape_a != shape_b:
        return f"shape {shape_b} vs {shape_a}"
    return f"voxel centres up to {corner_shift_mm(affine_a, shape_a, affine_b):.3g} mm apart"


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


def resample_onto_grid(
    volume: MetaTensor, target_affine: np.ndarray, target_shape: Sequence[int], mode: str = "bilinear"
) -> torch.Tensor:
    """Resample a channel-first ``volume`` [C, X, Y, Z] onto a target grid; returns [C, *target_shape].

    ``mode`` is ``"bilinear"`` (trilinear, for images) or ``"nearest"`` (for masks). Target voxels whose centres
    fall inside the source volume's field of view (voxel edges included) get the interpolated value, the last
    half voxel clamped to the edge value; voxels outside it get 0 (no uptake, background).
    """
    source_affine = volume.affine.numpy()
    source_shape = tuple(volume.shape[1:])
    resampler = SpatialResample(mode=mode, padding_mode="border", align_corners=False, dtype=torch.float32)
    resampled = resampler(
        volume, dst_affine=torch.as_tensor(target_affine, dtype=torch.float64), spatial_size=list(target_shape)
    )
    inside = inside_field_of_view(source_affine, source_shape, target_affine, target_shape)
    return torch.as_tensor(resampled, dtype=torch.float32) * inside
