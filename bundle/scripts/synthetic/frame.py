# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The body frame: where a standard adult's anatomy lands on a given grid.

Anatomy is described once, for a standard adult, in *template* millimetres: ``u`` is the depth below
the top of the head (vertex), ``x`` the distance from the midline towards the patient's left and ``y``
the distance from the body centre towards anterior. A :class:`BodyFrame` maps template positions onto
the patient frame of one grid (mm along the LAS axes) for one subject, through a depth mapping
(``u`` to slice height) and a midline that may drift from slice to slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scripts.synthetic.grid import Grid

# Torso outline of the standard adult, from the neck to the crotch: depth below the vertex (mm), lean
# half-width, lean half-depth and subcutaneous fat thickness (mm; scaled per subject).
TORSO_U = np.array([160.0, 200.0, 262.0, 288.0, 310.0, 350.0, 450.0, 540.0, 620.0, 720.0, 820.0, 900.0, 940.0, 965.0])
TORSO_HALF_WIDTH = np.array(
    [48.0, 48.0, 54.0, 120.0, 158.0, 158.0, 150.0, 140.0, 135.0, 135.0, 150.0, 158.0, 150.0, 125.0]
)
TORSO_HALF_DEPTH = np.array([55.0, 52.0, 56.0, 80.0, 98.0, 104.0, 110.0, 108.0, 104.0, 104.0, 104.0, 98.0, 92.0, 80.0])
TORSO_FAT = np.array([3.0, 3.0, 4.0, 7.0, 9.0, 10.0, 11.0, 14.0, 19.0, 22.0, 20.0, 18.0, 16.0, 14.0])
# Superellipse exponent of the torso cross-section (2 = ellipse; higher = boxier), neck to pelvis.
TORSO_EXPONENT = np.array([2.0, 2.0, 2.0, 2.2, 2.4, 2.4, 2.4, 2.4, 2.5, 2.5, 2.5, 2.4, 2.3, 2.2])

# Vertebral-column centre line: depth, AP offset from the body centre (mm) and vertebral-body radius.
SPINE_U = np.array([150.0, 230.0, 290.0, 360.0, 450.0, 560.0, 660.0, 760.0, 830.0])
SPINE_Y = np.array([-12.0, -22.0, -38.0, -56.0, -60.0, -56.0, -42.0, -32.0, -40.0])
SPINE_RADIUS = np.array([9.0, 10.0, 12.0, 14.0, 15.0, 17.0, 20.0, 22.0, 22.0])


def _extended_knots(u: np.ndarray, si: np.ndarray, slope: float) -> tuple[np.ndarray, np.ndarray]:
    """Add far-away knots so :func:`numpy.interp` extrapolates linearly with ``slope`` (mm per template mm)."""
    far = 1e5
    u_ext = np.concatenate([[u[0] - far], u, [u[-1] + far]])
    si_ext = np.concatenate([[si[0] + far * slope], si, [si[-1] - far * slope]])
    return u_ext, si_ext


@dataclass
class BodyFrame:
    """One subject's mapping from template millimetres to the patient frame of a grid.

    Attributes:
        u_knots: increasing template depths of the depth mapping.
        si_knots: patient-frame heights (mm along axis 2) of those depths (decreasing).
        centre_u: template depths at which the body centre is known (increasing).
        centre_x: midline position (mm along axis 0) at ``centre_u``.
        centre_y: body-centre position (mm along axis 1) at ``centre_u``.
        width_scale: lean-body width of this subject relative to the standard adult.
        height_scale: body length of this subject relative to the standard adult.
        slice_u: template depth of every slice of the grid.
    """

    u_knots: np.ndarray
    si_knots: np.ndarray
    centre_u: np.ndarray
    centre_x: np.ndarray
    centre_y: np.ndarray
    width_scale: float
    height_scale: float
    slice_u: np.ndarray

    @classmethod
    def build(
        cls,
        grid: Grid,
        u_knots: np.ndarray,
        si_knots: np.ndarray,
        centre_u: np.ndarray,
        centre_x: np.ndarray,
        centre_y: np.ndarray,
        width_scale: float,
        height_scale: float,
    ) -> BodyFrame:
        """Build a frame from its knots and compute the template depth of every slice of ``grid``."""
        u_ext, si_ext = _extended_knots(np.asarray(u_knots, float), np.asarray(si_knots, float), height_scale)
        slice_si = grid.axes_mm()[2].astype(np.float64)
        slice_u = np.interp(slice_si, si_ext[::-1], u_ext[::-1])
        return cls(
            u_ext,
            si_ext,
            np.asarray(centre_u, float),
            np.asarray(centre_x, float),
            np.asarray(centre_y, float),
            float(width_scale),
            float(height_scale),
            slice_u,
        )

    def si(self, u: float | np.ndarray) -> np.ndarray:
        """Patient-frame height (mm) of template depth ``u``."""
        return np.interp(u, self.u_knots, self.si_knots)

    def centre(self, u: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Midline x and body-centre y (mm) at template depth ``u``."""
        return np.interp(u, self.centre_u, self.centre_x), np.interp(u, self.centre_u, self.centre_y)

    def point(self, u: float, x: float = 0.0, y: float = 0.0) -> np.ndarray:
        """Patient-frame position (mm) of the template point (``u``, ``x``, ``y``)."""
        cx, cy = self.centre(u)
        return np.array([float(cx) + x * self.width_scale, float(cy) + y * self.width_scale, float(self.si(u))])

    def size(self, lateral: float, anterior: float, superior: float) -> np.ndarray:
        """Patient-frame radii (mm) of a template size."""
        return np.array([lateral * self.width_scale, anterior * self.width_scale, superior * self.height_scale])

    def path(self, points: list[tuple[float, float, float]]) -> np.ndarray:
        """Patient-frame positions of a list of template (u, x, y) points."""
        return np.stack([self.point(u, x, y) for u, x, y in points])


def procedural_frame(
    grid: Grid,
    height_scale: float,
    width_scale: float,
    vertex_margin_mm: float,
    offset_mm: tuple[float, float],
    tilt: float,
) -> BodyFrame:
    """A straight body lying along the grid's superior axis, the vertex ``vertex_margin_mm`` below the top.

    Args:
        grid: LAS grid of the phantom.
        height_scale: body length relative to the standard adult.
        width_scale: lean-body width relative to the standard adult.
        vertex_margin_mm: gap between the top of the field of view and the vertex.
        offset_mm: (x, y) shift of the body centre from the centre of the field of view.
        tilt: lateral drift of the midline in mm per mm of depth (patients never lie perfectly straight).
    """
    extent = np.asarray(grid.shape) * np.asarray(grid.spacing)
    top_si = extent[2] - 0.5 * grid.spacing[2] - vertex_margin_mm
    u_knots = np.array([0.0, 1000.0])
    si_knots = top_si - height_scale * u_knots
    centre_u = np.array([0.0, 1000.0])
    cx0 = 0.5 * (extent[0] - grid.spacing[0]) + offset_mm[0]
    # Patients lie on the couch: the body centre sits a little posterior of the field-of-view centre.
    cy0 = 0.5 * (extent[1] - grid.spacing[1]) + offset_mm[1]
    centre_x = cx0 + tilt * (centre_u - 500.0)
    centre_y = np.full(2, cy0)
    return BodyFrame.build(grid, u_knots, si_knots, centre_u, centre_x, centre_y, width_scale, height_scale)
