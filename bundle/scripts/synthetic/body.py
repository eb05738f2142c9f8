# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Body outline and body cavities: skin-to-muscle layers, thoracic and abdominal cavities, lungs, head, limbs.

The torso is drawn slab by slab (a few slices at a time) from a per-slice profile, so memory stays
bounded on large grids and no Python loop runs over voxels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri
from scripts.synthetic.fields import SmoothField
from scripts.synthetic.frame import (
    SPINE_U,
    SPINE_Y,
    TORSO_EXPONENT,
    TORSO_FAT,
    TORSO_HALF_DEPTH,
    TORSO_HALF_WIDTH,
    TORSO_U,
    BodyFrame,
)
from scripts.synthetic.shapes import Canvas, ellipsoid, pieces_of, tube
from scripts.synthetic.tissues import Tissue
from scripts.synthetic.traits import PatientTraits, StudyState

SLAB = 16  # slices per slab
# Template depths (mm below the vertex) of the diaphragm domes and the pelvic floor.
RIGHT_DOME_U = 525.0
LEFT_DOME_U = 540.0
PELVIC_FLOOR_U = 950.0
LUNG_APEX_U = 292.0
BOWEL_TOP_U = 600.0


@dataclass
class TorsoProfile:
    """Per-slice torso cross-section of one subject (all arrays have one value per slice, mm)."""

    u: np.ndarray  # template depth
    cx: np.ndarray
    cy: np.ndarray
    half_width: np.ndarray  # lean body (muscle boundary)
    half_depth: np.ndarray
    fat: np.ndarray  # subcutaneous fat thickness
    exponent: np.ndarray
    wall: np.ndarray  # thickness of the chest or abdominal wall (muscle and ribs)
    present: np.ndarray  # slice lies between the neck and the crotch


def torso_profile(frame: BodyFrame, traits: PatientTraits) -> TorsoProfile:
    """The standard torso cross-section of every slice, scaled to the subject."""
    u = frame.slice_u
    cx, cy = frame.centre(u)
    half_width = np.interp(u, TORSO_U, TORSO_HALF_WIDTH) * frame.width_scale
    half_depth = np.interp(u, TORSO_U, TORSO_HALF_DEPTH) * frame.width_scale
    fat = np.interp(u, TORSO_U, TORSO_FAT) * traits.fat_scale
    wall = np.interp(u, [300.0, 540.0, 620.0, 950.0], [22.0, 22.0, 15.0, 15.0]) * frame.width_scale
    present = (u >= TORSO_U[0]) & (u <= TORSO_U[-1])
    return TorsoProfile(u, cx, cy, half_width, half_depth, fat, np.interp(u, TORSO_U, TORSO_EXPONENT), wall, present)


def _superellipse(dx: np.ndarray, dy: np.ndarray, a: np.ndarray, b: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Level of the superellipse |dx/a|^p + |dy/b|^p (<= 1 inside)."""
    return (np.abs(dx) / a) ** p + (np.abs(dy) / b) ** p


def paint_torso(
    canvas: Canvas,
    frame: BodyFrame,
    profile: TorsoProfile,
    traits: PatientTraits,
    bowel_field: SmoothField,
    gas_field: SmoothField,
    lungs: bool = True,
) -> None:
    """Draw the torso from neck to crotch: fat, muscle, abdominal contents, mediastinal fat and lungs."""
    slices = np.flatnonzero(profile.present)
    if slices.size == 0:
        return
    w = np.float32(frame.width_scale)
    # The field is roughly normal (sd ~0.75 after interpolation): threshold at the visceral-fat quantile.
    bowel_threshold = np.float32(0.75 * ndtri(np.clip(traits.visceral_fat, 0.01, 0.99)))
    x_axis = canvas.axes[0][:, None, None]
    y_axis = canvas.axes[1][None, :, None]
    for k0 in range(int(slices[0]), int(slices[-1]) + 1, SLAB):
        k1 = min(k0 + SLAB, int(slices[-1]) + 1)
        ks = slice(k0, k1)

        def per_slice(values: np.ndarray, ks: slice = ks) -> np.ndarray:
            return values[ks].astype(np.float32)[None, None, :]

        u = per_slice(profile.u)
        present = per_slice(profile.present.astype(np.float32)) > 0
        dx = x_axis - per_slice(profile.cx)
        dy = y_axis - per_slice(profile.cy)
        a, b, p = per_slice(profile.half_width), per_slice(profile.half_depth), per_slice(profile.exponent)
        fat, wall = per_slice(profile.fat), per_slice(profile.wall)
        region = canvas.tissue[:, :, ks]
        region[(_superellipse(dx, dy, a + fat, b + fat, p) <= 1) & present] = Tissue.FAT
        region[(_superellipse(dx, dy, a, b, p) <= 1) & present] = Tissue.MUSCLE

        spine_y = np.interp(u, SPINE_U, SPINE_Y).astype(np.float32) * w
        a_cav, b_cav = a - wall, b - wall
        cavity = (_superellipse(dx, dy, a_cav, b_cav, p) <= 1) & present
        # Vertebral body and back muscles: behind the spine, and a rounded front around the vertebra.
        cavity &= ~((np.abs(dx) < 42 * w) & (dy < spine_y))
        cavity &= (dx / (42 * w)) ** 2 + ((dy - spine_y) / (20 * w)) ** 2 > 1
        cavity &= u >= LUNG_APEX_U - 10

        abdomen = cavity & (u >= RIGHT_DOME_U - 10) & (u <= PELVIC_FLOOR_U)
        bowel = bowel_field.slab(k0, k1) > bowel_threshold
        region[abdomen] = Tissue.FAT
        # Bowel loops from below the liver hilum down; above, fat between the upper abdominal organs.
        region[abdomen & bowel & (u >= BOWEL_TOP_U)] = Tissue.BOWEL
        region[abdomen & bowel & (gas_field.slab(k0, k1) > 1.9) & (u > BOWEL_TOP_U + 20)] = Tissue.GAS

        # Diaphragm: domes at the centre of each hemithorax, deeper at the sides and at the back.
        side_dome = np.where(dx < 0, np.float32(RIGHT_DOME_U), np.float32(LEFT_DOME_U))
        lateral = np.clip((np.abs(dx) / a_cav - 0.4) / 0.6, 0, 1)
        posterior = np.clip(-dy / b_cav, 0, 1)
        diaphragm = side_dome + 60 * lateral**2 + 55 * posterior**2
        thorax = cavity & (u < diaphragm)
        if lungs:
            region[thorax] = Tissue.FAT
            apex = LUNG_APEX_U + 45 * ((np.abs(dx) / a_cav - 0.55) / 0.45) ** 2
            region[thorax & (np.abs(dx) > 24 * w) & (u >= apex)] = Tissue.LUNG
        else:
            # Real lungs are copied in later: chest wall around them, mediastinal fat between them.
            region[thorax] = Tissue.MUSCLE
            region[thorax & (np.abs(dx) < 35 * w)] = Tissue.FAT


def paint_table(canvas: Canvas, frame: BodyFrame, profile: TorsoProfile) -> None:
    """Draw the curved scanner couch under the body, along the whole field of view."""
    if not profile.present.any():
        return
    back = float(np.min((profile.cy - profile.half_depth - profile.fat)[profile.present]))
    centre_x = float(np.median(profile.cx))
    x = canvas.axes[0][:, None] - centre_x
    y = canvas.axes[1][None, :]
    surface = back - 6.0 + x**2 / 1800.0
    couch = (y <= surface) & (y >= surface - 9.0) & (np.abs(x) < 230)
    canvas.tissue[couch] = Tissue.TABLE


def paint_head(canvas: Canvas, frame: BodyFrame, traits: PatientTraits, brain: bool = True) -> None:
    """Draw the head: scalp, skull, face soft tissue, sinuses, airway and (procedurally) the brain."""
    scale = traits.head_scale
    centre = frame.point(105.0, 0.0, 5.0)
    radii = np.array([72.0, 92.0, 108.0]) * scale * np.array([1, 1, frame.height_scale])
    canvas.paint(pieces_of(ellipsoid(canvas, centre, radii)), Tissue.FAT, overwrite={Tissue.AIR, Tissue.FAT})
    canvas.paint(pieces_of(ellipsoid(canvas, centre, radii - 4)), Tissue.MUSCLE, overwrite={Tissue.FAT, Tissue.AIR})
    skull = np.array([-6.0, -6.0, -6.0])
    canvas.paint(pieces_of(ellipsoid(canvas, centre, radii + skull)), Tissue.BONE, overwrite={Tissue.MUSCLE})
    canvas.paint(pieces_of(ellipsoid(canvas, centre, radii + skull - 7)), Tissue.MUSCLE, overwrite={Tissue.BONE})
    if brain:
        brain_centre = frame.point(92.0, 0.0, -2.0)
        brain_radii = np.array([60.0, 78.0, 72.0]) * scale * np.array([1, 1, frame.height_scale])
        canvas.paint(pieces_of(ellipsoid(canvas, brain_centre, brain_radii)), Tissue.BRAIN, overwrite={Tissue.MUSCLE})
    for side in (-1, 1):
        sinus = ellipsoid(canvas, frame.point(165.0, 24.0 * side, 48.0), np.array([11.0, 14.0, 15.0]) * scale)
        canvas.paint(pieces_of(sinus), Tissue.GAS, overwrite={Tissue.MUSCLE, Tissue.BONE})
    airway = frame.path([(172.0, 0.0, 38.0), (215.0, 0.0, 26.0), (300.0, 0.0, 24.0), (385.0, 0.0, 8.0)])
    canvas.paint(tube(canvas, airway, 8.0 * frame.width_scale), Tissue.GAS, overwrite={Tissue.MUSCLE, Tissue.FAT})
    for side in (-1, 1):
        bronchus = frame.path([(385.0, 0.0, 8.0), (420.0, 45.0 * side, 0.0)])
        canvas.paint(tube(canvas, bronchus, 6.0 * frame.width_scale), Tissue.GAS, overwrite={Tissue.MUSCLE, Tissue.FAT})


def arm_path(
    frame: BodyFrame, profile: TorsoProfile, traits: PatientTraits, state: StudyState, side: int
) -> tuple[np.ndarray, np.ndarray]:
    """Centre line (patient frame, mm) and lean radii (mm) of one arm; ``side`` +1 = left, -1 = right.

    Arms down hang just outside the torso outline of ``profile``; arms up lie beside the head.
    """
    w = frame.width_scale
    if state.arms_up:
        points = [(300.0, 140.0, -5.0), (230.0, 150.0, -10.0), (100.0, 128.0, -5.0), (-250.0, 112.0, 0.0)]
        radii = np.array([40.0, 36.0, 32.0, 26.0]) * w
        return frame.path([(u, side * x, y) for u, x, y in points]), radii
    depths = np.array([300.0, 450.0, 600.0, 750.0, 880.0])
    radii = np.array([40.0, 36.0, 31.0, 27.0, 25.0]) * w
    order = np.argsort(profile.u)

    def torso(values: np.ndarray) -> np.ndarray:
        # Along the torso; outside the field of view, the standard torso scaled to the subject.
        inside = np.interp(depths, profile.u[order], values[order])
        return np.where((depths >= profile.u.min()) & (depths <= profile.u.max()), inside, np.nan)

    standard_outer = (
        np.interp(depths, TORSO_U, TORSO_HALF_WIDTH) * w + np.interp(depths, TORSO_U, TORSO_FAT) * traits.fat_scale
    )
    cx, cy = frame.centre(depths)
    outer = torso(profile.half_width + profile.fat)
    outer = np.where(np.isnan(outer), standard_outer, outer)
    centre_x = np.where(np.isnan(torso(profile.cx)), cx, torso(profile.cx))
    centre_y = np.where(np.isnan(torso(profile.cy)), cy, torso(profile.cy))
    lateral = outer + radii + 8.0 + 6.0 * traits.fat_scale
    path = np.stack([centre_x + side * lateral, centre_y, frame.si(depths)], axis=1)
    return path, radii


def paint_limbs(
    canvas: Canvas, frame: BodyFrame, profile: TorsoProfile, traits: PatientTraits, state: StudyState
) -> None:
    """Draw both arms (down at the sides or raised beside the head) and both thighs."""
    outside = {Tissue.AIR, Tissue.FAT, Tissue.TABLE}
    w = frame.width_scale
    for side in (-1, 1):
        path, radii = arm_path(frame, profile, traits, state, side)
        fat = 6.0 * traits.fat_scale
        canvas.paint(tube(canvas, path, radii + fat), Tissue.FAT, overwrite={Tissue.AIR})
        canvas.paint(tube(canvas, path, radii), Tissue.MUSCLE, overwrite={Tissue.FAT})
        leg = frame.path([(915.0, 82.0 * side, 0.0), (1000.0, 88.0 * side, 5.0), (1400.0, 95.0 * side, 10.0)])
        leg_radii = np.array([72.0, 68.0, 52.0]) * w
        canvas.paint(tube(canvas, leg, leg_radii + 12.0 * traits.fat_scale), Tissue.FAT, overwrite=outside)
        canvas.paint(tube(canvas, leg, leg_radii), Tissue.MUSCLE, overwrite={Tissue.FAT})
