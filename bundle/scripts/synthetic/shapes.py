# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Drawing primitives in physical millimetres: lumpy ellipsoids and tubes, evaluated only in their bounding box.

Every primitive returns ``(box, mask)`` pairs, where ``box`` is a tuple of index slices into the volume and
``mask`` a boolean array of the box's shape; nothing outside the box is touched, which keeps drawing cheap
on 400 x 400 x 300 grids.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

import numpy as np
from scripts.synthetic.grid import Grid

Box = tuple[slice, slice, slice]
# Low-order angular terms that make an ellipsoid lumpy: R(u) = 1 + sum_k c_k * term_k(u), u a unit direction.
N_LUMP_TERMS = 9


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3D rotation matrix."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def rotation_about_si(angle_rad: float) -> np.ndarray:
    """Rotation in the axial plane (about the superior axis) by ``angle_rad``."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def random_lumps(rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Coefficients of the angular terms for an irregular outline (``amplitude`` ~ relative radius change)."""
    return rng.normal(0.0, amplitude, N_LUMP_TERMS) / np.sqrt(np.arange(1, N_LUMP_TERMS + 1) / 3 + 1)


class Canvas:
    """A tissue volume being drawn on, with the patient-frame coordinates of its voxel centres."""

    def __init__(self, grid: Grid, tissue: np.ndarray | None = None) -> None:
        self.grid = grid
        self.tissue = np.zeros(grid.shape, dtype=np.uint8) if tissue is None else tissue
        self.axes = grid.axes_mm()
        self.spacing = np.asarray(grid.spacing, dtype=np.float64)
        self.shape = np.asarray(grid.shape)

    def box(self, low_mm: Sequence[float], high_mm: Sequence[float]) -> Box | None:
        """Index box of the voxels whose centres lie in [low_mm, high_mm], or None when it is empty."""
        low = np.maximum(np.ceil(np.asarray(low_mm) / self.spacing), 0).astype(int)
        high = np.minimum(np.floor(np.asarray(high_mm) / self.spacing) + 1, self.shape).astype(int)
        if np.any(high <= low):
            return None
        return tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))  # type: ignore[return-value]

    def box_axes(self, box: Box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Coordinates (mm) of the box's voxel centres, shaped to broadcast to the box."""
        x = self.axes[0][box[0]][:, None, None]
        y = self.axes[1][box[1]][None, :, None]
        z = self.axes[2][box[2]][None, None, :]
        return x, y, z

    def paint(
        self, pieces: Iterable[tuple[Box, np.ndarray]], tissue: int, overwrite: Collection[int] | None = None
    ) -> int:
        """Set ``tissue`` where the masks are true (only over the ``overwrite`` tissues when given).

        Returns the number of voxels set.
        """
        allowed = None if overwrite is None else np.asarray(sorted(int(t) for t in overwrite), dtype=np.uint8)
        total = 0
        for box, mask in pieces:
            region = self.tissue[box]
            if allowed is not None:
                mask = mask & np.isin(region, allowed)
            region[mask] = tissue
            total += int(np.count_nonzero(mask))
        return total


def ellipsoid(
    canvas: Canvas,
    centre: Sequence[float],
    radii: Sequence[float],
    rotation: np.ndarray | None = None,
    lumps: np.ndarray | None = None,
) -> tuple[Box, np.ndarray, np.ndarray] | None:
    """A (rotated, lumpy) ellipsoid: its box, mask and normalised radius (0 at the centre, ~1 at the surface).

    ``rotation`` maps patient-frame offsets onto the ellipsoid's own axes; ``lumps`` are angular-term
    coefficients from :func:`random_lumps`. Returns None when the ellipsoid misses the grid.
    """
    centre = np.asarray(centre, dtype=np.float64)
    radii = np.asarray(radii, dtype=np.float64)
    reach = (
        radii.max() * (1.0 + (0.0 if lumps is None else float(np.abs(lumps).sum())))
        if (rotation is not None or lumps is not None)
        else radii
    )
    reach = np.broadcast_to(reach, (3,))
    box = canvas.box(centre - reach, centre + reach)
    if box is None:
        return None
    offsets = [axis - np.float32(c) for axis, c in zip(canvas.box_axes(box), centre, strict=True)]
    if rotation is None:
        q = [offsets[a] / np.float32(radii[a]) for a in range(3)]
    else:
        rot = np.asarray(rotation, dtype=np.float32)
        q = [
            (rot[a, 0] * offsets[0] + rot[a, 1] * offsets[1] + rot[a, 2] * offsets[2]) / np.float32(radii[a])
            for a in range(3)
        ]
    rho = np.sqrt(q[0] ** 2 + q[1] ** 2 + q[2] ** 2)
    rho = np.broadcast_to(rho, tuple(s.stop - s.start for s in box))
    if lumps is None:
        return box, rho <= 1.0, rho
    safe = np.maximum(rho, 1e-6)
    ux, uy, uz = (np.broadcast_to(c / safe, rho.shape) for c in q)
    terms = (ux, uy, uz, ux * uy, uy * uz, ux * uz, ux * ux - uy * uy, 1.5 * uz * uz - 0.5, ux * uy * uz)
    surface = np.ones_like(rho)
    for coefficient, term in zip(np.asarray(lumps, dtype=np.float32), terms, strict=True):
        surface += coefficient * term
    np.maximum(surface, 0.35, out=surface)
    scaled = rho / surface
    return box, scaled <= 1.0, scaled


def tube(
    canvas: Canvas, points: Sequence[Sequence[float]], radii: Sequence[float] | float
) -> list[tuple[Box, np.ndarray]]:
    """A tube along a polyline of patient-frame points, with a radius per point (linear in between)."""
    points = np.asarray(points, dtype=np.float64)
    radii = np.broadcast_to(np.asarray(radii, dtype=np.float64), (len(points),))
    pieces = []
    for start, end, r0, r1 in zip(points[:-1], points[1:], radii[:-1], radii[1:], strict=True):
        reach = max(r0, r1)
        box = canvas.box(np.minimum(start, end) - reach, np.maximum(start, end) + reach)
        if box is None:
            continue
        axis = end - start
        length2 = max(float(axis @ axis), 1e-9)
        offsets = [c - np.float32(s) for c, s in zip(canvas.box_axes(box), start, strict=True)]
        along = (offsets[0] * axis[0] + offsets[1] * axis[1] + offsets[2] * axis[2]) / np.float32(length2)
        along = np.clip(along, 0.0, 1.0)
        dist2 = sum((offsets[a] - along * np.float32(axis[a])) ** 2 for a in range(3))
        radius = np.float32(r0) + along * np.float32(r1 - r0)
        pieces.append((box, dist2 <= radius * radius))
    return pieces


def pieces_of(result: tuple[Box, np.ndarray, np.ndarray] | None) -> list[tuple[Box, np.ndarray]]:
    """The (box, mask) list of an :func:`ellipsoid` result (empty when it missed the grid)."""
    return [] if result is None else [(result[0], result[1])]
