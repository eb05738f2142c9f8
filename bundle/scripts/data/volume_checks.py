# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Checks that a loaded CT, PET or label volume can be used, raising :class:`InputDataError` otherwise."""

from __future__ import annotations

import os

import numpy as np
from scripts.errors import InputDataError

PathLike = str | os.PathLike


def spatial_shape(array: np.ndarray, path: PathLike) -> tuple[int, int, int]:
    """Return the 3D shape of ``array`` (trailing singleton axes allowed), or raise for empty or 2D data."""
    shape = tuple(int(s) for s in np.shape(array))
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if any(s == 0 for s in shape) or len(shape) == 0:
        raise InputDataError(path, f"empty volume (shape {shape})")
    if len(shape) != 3:
        raise InputDataError(path, f"expected a 3D volume, got shape {shape}")
    if min(shape) < 2:
        raise InputDataError(path, f"a 2D volume (shape {shape}); 3D with at least 2 voxels per axis is required")
    return shape  # type: ignore[return-value]


def check_image(array: np.ndarray, path: PathLike) -> tuple[int, int, int]:
    """Check a CT or PET volume: 3D, not empty, all values finite. Returns the spatial shape."""
    shape = spatial_shape(array, path)
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(finite.size - np.count_nonzero(finite))
        raise InputDataError(path, f"{bad} non-finite value(s) (NaN or inf) in the image")
    return shape


def check_label(array: np.ndarray, path: PathLike) -> tuple[int, int, int]:
    """Check a lesion mask: 3D, not empty, values only 0 and 1. Returns the spatial shape."""
    shape = spatial_shape(array, path)
    values = np.unique(array)
    extra = values[(values != 0) & (values != 1)]
    if extra.size:
        shown = ", ".join(f"{v:g}" for v in extra[:5]) + (", ..." if extra.size > 5 else "")
        raise InputDataError(path, f"label values other than 0/1: {shown}")
    return shape


def world_bounds(affine: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned world bounding box (min corner, max corner) in mm of a grid, voxel edges included."""
    corners = np.array(
        [[i, j, k] for i in (-0.5, shape[0] - 0.5) for j in (-0.5, shape[1] - 0.5) for k in (-0.5, shape[2] - 0.5)]
    )
    world = corners @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]
    return world.min(axis=0), world.max(axis=0)


def check_affine(affine: np.ndarray, path: PathLike) -> None:
    """Raise when an affine is non-finite or singular (no usable voxel-to-world mapping)."""
    affine = np.asarray(affine, dtype=np.float64)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputDataError(path, "the image affine is singular or non-finite, so its grid is unknown")


def check_overlap(
    ct_affine: np.ndarray,
    ct_shape: tuple[int, ...],
    pet_affine: np.ndarray,
    pet_shape: tuple[int, ...],
    pet_path: PathLike,
    min_fraction: float = 0.5,
) -> None:
    """Raise unless the PET field of view covers at least ``min_fraction`` of the CT's along every axis.

    Below that, resampling PET onto the CT grid would produce mostly padding: the pair is not one study,
    or one of the two headers is wrong.
    """
    check_affine(ct_affine, pet_path)
    check_affine(pet_affine, pet_path)
    ct_lo, ct_hi = world_bounds(ct_affine, ct_shape)
    pet_lo, pet_hi = world_bounds(pet_affine, pet_shape)
    overlap = np.clip(np.minimum(ct_hi, pet_hi) - np.maximum(ct_lo, pet_lo), 0, None)
    fraction = overlap / np.maximum(ct_hi - ct_lo, 1e-6)
    if (fraction < min_fraction).any():
        raise InputDataError(
            pet_path,
            "PET and CT cannot be brought onto one grid: their fields of view overlap by only "
            + ", ".join(f"{100 * f:.0f}%" for f in fraction)
            + " of the CT extent per axis (world mm); check that both files belong to the same study",
        )
