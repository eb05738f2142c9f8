# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Voxel grids of the phantom: LAS affines, patient-frame axis coordinates and the coarser PET grid.

The phantom is always built on an array in LAS order (axis 0 towards the patient's left, axis 1 towards
anterior, axis 2 towards superior), like the autoPET NIfTI files. Patient-frame coordinates are millimetres
along those three directions, measured from voxel (0, 0, 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

LAS = ("L", "A", "S")

# Field of view (mm) used when only a shape is given: ~500 mm in-plane, ~1 m head to thigh.
DEFAULT_FOV_MM = (512.0, 512.0, 1000.0)


@dataclass(frozen=True)
class Grid:
    """A 3D voxel grid: array shape and voxel-to-world affine (RAS world millimetres, as in NIfTI)."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along each array axis."""
        return tuple(float(v) for v in np.linalg.norm(np.asarray(self.affine)[:3, :3], axis=0))  # type: ignore[return-value]

    def axes_mm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Patient-frame coordinates (mm) of the voxel centres along each axis, as float32 1D arrays."""
        return tuple(
            np.arange(n, dtype=np.float32) * np.float32(s) for n, s in zip(self.shape, self.spacing, strict=True)
        )  # type: ignore[return-value]


def las_grid(shape: tuple[int, int, int], spacing: tuple[float, float, float] | None = None) -> Grid:
    """A LAS grid of ``shape`` centred on the world origin; ``spacing`` defaults to ``DEFAULT_FOV_MM / shape``."""
    shape = tuple(int(n) for n in shape)  # type: ignore[assignment]
    if len(shape) != 3 or min(shape) < 2:
        raise ValueError(f"shape must be three sizes of at least 2 voxels, got {shape}")
    if spacing is None:
        spacing = tuple(fov / n for fov, n in zip(DEFAULT_FOV_MM, shape, strict=True))  # type: ignore[assignment]
    spacing = tuple(float(s) for s in spacing)  # type: ignore[assignment]
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"spacing must be three positive sizes in mm, got {spacing}")
    rotation = np.diag([-spacing[0], spacing[1], spacing[2]])
    centre_index = (np.asarray(shape, dtype=np.float64) - 1) / 2
    affine = np.eye(4)
    affine[:3, :3] = rotation
    affine[:3, 3] = -rotation @ centre_index
    return Grid(shape, affine)


def coarser_grid(grid: Grid, factor: float = 2.0) -> Grid:
    """A grid with about ``factor`` times the spacing of ``grid`` and exactly the same physical extent.

    The voxel edges of the two grids coincide at both ends of every axis, so the new spacing is
    ``extent / round(n / factor)``; a PET on this grid covers the same field of view as the CT.
    """
    if factor < 1:
        raise ValueError(f"the PET grid factor must be >= 1, got {factor}")
    old_shape = np.asarray(grid.shape, dtype=np.float64)
    new_shape = np.maximum(2, np.round(old_shape / factor)).astype(int)
    scale = old_shape / new_shape
    affine = np.asarray(grid.affine, dtype=np.float64).copy()
    first_edge = affine[:3, :3] @ np.full(3, -0.5) + affine[:3, 3]
    affine[:3, :3] = affine[:3, :3] * scale[None, :]
    affine[:3, 3] = first_edge - affine[:3, :3] @ np.full(3, -0.5)
    return Grid(tuple(int(n) for n in new_shape), affine)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Reorientation:
    """How an array in some axis order maps onto LAS order and back."""

    to_las: np.ndarray
    from_las: np.ndarray

    def apply(self, array: np.ndarray) -> np.ndarray:
        """The array in LAS order."""
        return np.ascontiguousarray(apply_orientation(array, self.to_las))

    def undo(self, array: np.ndarray) -> np.ndarray:
        """A LAS-ordered array back in the original order."""
        return np.ascontiguousarray(apply_orientation(array, self.from_las))


def las_view(affine: np.ndarray, shape: tuple[int, int, int]) -> tuple[Grid, Reorientation]:
    """The LAS-ordered grid equivalent to (``affine``, ``shape``) and the reorientation between the two."""
    own = io_orientation(np.asarray(affine))
    target = axcodes2ornt(LAS)
    to_las = ornt_transform(own, target)
    from_las = ornt_transform(target, own)
    las_affine = np.asarray(affine, dtype=np.float64) @ inv_ornt_aff(to_las, shape)
    las_shape = [0, 0, 0]
    for axis, (out_axis, _flip) in enumerate(to_las):
        las_shape[int(out_axis)] = int(shape[axis])
    return Grid(tuple(las_shape), las_affine), Reorientation(to_las, from_las)  # type: ignore[arg-type]
