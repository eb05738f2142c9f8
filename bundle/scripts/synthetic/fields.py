# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Smooth random fields: white noise on a coarse lattice, linearly interpolated to the voxel grid.

Used for tissue texture (lung density, marrow, bowel loops, patchy gut uptake) at a cost of a few
array passes, without filtering a full-resolution noise volume.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scripts.synthetic.grid import Grid


def interpolate_axis(values: np.ndarray, positions: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``values`` along ``axis`` at fractional lattice ``positions``."""
    lower = np.floor(positions).astype(np.intp)
    weight = (positions - lower).astype(np.float32)
    shape = [1, 1, 1]
    shape[axis] = -1
    weight = weight.reshape(shape)
    below = np.take(values, lower, axis=axis)
    above = np.take(values, lower + 1, axis=axis)
    below *= 1.0 - weight
    above *= weight
    below += above
    return below


class SmoothField:
    """A zero-mean, unit-variance random field with features about ``cell_mm`` across."""

    def __init__(self, grid: Grid, cell_mm: float, rng: np.random.Generator) -> None:
        self.cell_mm = float(cell_mm)
        extent = np.asarray(grid.shape) * np.asarray(grid.spacing)
        lattice_shape = tuple(int(n) for n in np.ceil(extent / self.cell_mm).astype(int) + 3)
        lattice = rng.standard_normal(lattice_shape).astype(np.float32)
        lattice = ndimage.gaussian_filter(lattice, 0.7, mode="wrap")
        self.lattice = lattice / max(float(lattice.std()), 1e-6)
        # Voxel-centre positions in lattice units (lattice node 1 sits at the grid's first voxel centre).
        self.positions = [1.0 + axis / self.cell_mm for axis in grid.axes_mm()]

    def slab(self, k0: int = 0, k1: int | None = None) -> np.ndarray:
        """The field on slices ``k0:k1`` of the grid (float32)."""
        values = interpolate_axis(self.lattice, self.positions[2][k0:k1], axis=2)
        values = interpolate_axis(values, self.positions[0], axis=0)
        return interpolate_axis(values, self.positions[1], axis=1)

    def box(self, box: tuple[slice, slice, slice]) -> np.ndarray:
        """The field inside an index box (float32)."""
        values = interpolate_axis(self.lattice, self.positions[2][box[2]], axis=2)
        values = interpolate_axis(values, self.positions[0][box[0]], axis=0)
        return interpolate_axis(values, self.positions[1][box[1]], axis=1)
