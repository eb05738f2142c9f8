# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The skeleton: vertebral column with discs, ribs, sternum, clavicles, scapulae, pelvis, femora, arm bones.

Every bone is cortical bone around a cancellous (marrow) core, the site of bone metastases.
"""

from __future__ import annotations

import numpy as np
from scripts.synthetic.body import SLAB, TorsoProfile, arm_path
from scripts.synthetic.frame import SPINE_RADIUS, SPINE_U, SPINE_Y, BodyFrame
from scripts.synthetic.shapes import Canvas, ellipsoid, pieces_of, rotation_about_si, tube
from scripts.synthetic.tissues import Tissue
from scripts.synthetic.traits import PatientTraits, StudyState

SOFT = frozenset({Tissue.FAT, Tissue.MUSCLE, Tissue.BOWEL, Tissue.BROWN_FAT})
CORTEX_MM = 2.5
# Vertebra count reached at each spine depth (7 cervical, 12 thoracic, 5 lumbar); a disc sits at each integer.
VERTEBRA_U = np.array([150.0, 290.0, 560.0, 760.0])
VERTEBRA_INDEX = np.array([0.0, 7.0, 19.0, 24.0])
DISC_FRACTION = 0.18
# Ribs: depth of the first rib at the back, spacing, count, and how much lower the front end lies.
RIB_FIRST_U = 300.0
RIB_SPACING_U = 24.0
RIB_COUNT = 12
RIB_DROP_U = 70.0
RIB_HALF_THICKNESS = 5.0


def _bone_tube(canvas: Canvas, path: np.ndarray, radii: np.ndarray | float, overwrite: frozenset = SOFT) -> None:
    radii = np.broadcast_to(np.asarray(radii, dtype=float), (len(path),))
    canvas.paint(tube(canvas, path, radii), Tissue.BONE, overwrite)
    canvas.paint(tube(canvas, path, np.maximum(radii - CORTEX_MM, 0.5)), Tissue.MARROW, {Tissue.BONE})


def _bone_ellipsoid(canvas: Canvas, centre: np.ndarray, radii: np.ndarray, rotation: np.ndarray | None = None) -> None:
    canvas.paint(pieces_of(ellipsoid(canvas, centre, radii, rotation)), Tissue.BONE, SOFT)
    inner = np.maximum(radii - CORTEX_MM, 0.5)
    canvas.paint(pieces_of(ellipsoid(canvas, centre, inner, rotation)), Tissue.MARROW, {Tissue.BONE})


def paint_spine(canvas: Canvas, frame: BodyFrame) -> None:
    """Vertebral bodies with intervertebral discs, spinous processes and the sacrum."""
    path = frame.path([(u, 0.0, y) for u, y in zip(SPINE_U, SPINE_Y, strict=True)])
    radii = SPINE_RADIUS * frame.width_scale
    _bone_tube(canvas, path, radii, SOFT | {Tissue.LUNG, Tissue.GAS})
    index = np.interp(frame.slice_u, VERTEBRA_U, VERTEBRA_INDEX)
    in_column = (frame.slice_u > VERTEBRA_U[0]) & (frame.slice_u < VERTEBRA_U[-1])
    disc = in_column & ((index % 1.0) < DISC_FRACTION)
    pieces = [(box, mask & disc[box[2]][None, None, :]) for box, mask in tube(canvas, path, radii)]
    canvas.paint(pieces, Tissue.MUSCLE, overwrite={Tissue.BONE, Tissue.MARROW})
    spinous_path = frame.path([(u, 0.0, y - r - 20.0) for u, y, r in zip(SPINE_U, SPINE_Y, SPINE_RADIUS, strict=True)])
    spinous = [(box, mask & (~disc[box[2]])[None, None, :]) for box, mask in tube(canvas, spinous_path, 6.0)]
    canvas.paint(spinous, Tissue.BONE, {Tissue.MUSCLE, Tissue.FAT})
    _bone_ellipsoid(canvas, frame.point(862.0, 0.0, -62.0), frame.size(46.0, 18.0, 55.0))


def paint_ribs(canvas: Canvas, frame: BodyFrame, profile: TorsoProfile) -> None:
    """Twelve rib pairs around the chest wall, sloping down towards the front, with a sternal gap."""
    last_u = RIB_FIRST_U + RIB_SPACING_U * (RIB_COUNT - 1) + RIB_DROP_U + RIB_HALF_THICKNESS
    slices = np.flatnonzero((profile.u >= RIB_FIRST_U - RIB_HALF_THICKNESS) & (profile.u <= last_u) & profile.present)
    if slices.size == 0:
        return
    w = np.float32(frame.width_scale)
    x_axis = canvas.axes[0][:, None, None]
    y_axis = canvas.axes[1][None, :, None]
    for k0 in range(int(slices[0]), int(slices[-1]) + 1, SLAB):
        ks = slice(k0, min(k0 + SLAB, int(slices[-1]) + 1))
        u = profile.u[ks].astype(np.float32)[None, None, :]
        dx = x_axis - profile.cx[ks].astype(np.float32)[None, None, :]
        dy = y_axis - profile.cy[ks].astype(np.float32)[None, None, :]
        a = (profile.half_width[ks].astype(np.float32) - 11 * w)[None, None, :]
        b = (profile.half_depth[ks].astype(np.float32) - 11 * w)[None, None, :]
        nx, ny = dx / a, dy / b
        rho = np.sqrt(nx**2 + ny**2)
        radius_along = np.sqrt(dx**2 + dy**2) / np.maximum(rho, 1e-3)
        ring = np.abs(rho - 1.0) * radius_along
        front = ny / np.maximum(rho, 1e-3)  # -1 at the back, +1 at the front
        phase = (u - RIB_FIRST_U - RIB_DROP_U * (front + 1.0) / 2.0) / RIB_SPACING_U
        rib_index = np.round(phase)
        along = np.abs(phase - rib_index) * RIB_SPACING_U * frame.height_scale
        rib = (ring < RIB_HALF_THICKNESS) & (along < RIB_HALF_THICKNESS) & (rib_index >= 0) & (rib_index < RIB_COUNT)
        rib &= ~((np.abs(dx) < 28 * w) & (dy > 0))  # costal cartilage and sternum gap
        rib &= ~((rib_index >= 7) & (front > 0.2))  # lower ribs end at the costal margin
        rib &= ~((rib_index >= 10) & (front > -0.4))  # floating ribs
        core = rib & (ring < RIB_HALF_THICKNESS - CORTEX_MM) & (along < RIB_HALF_THICKNESS - CORTEX_MM)
        region = canvas.tissue[:, :, ks]
        soft = np.isin(region, np.array([Tissue.MUSCLE, Tissue.FAT], dtype=np.uint8))
        region[rib & soft] = Tissue.BONE
        region[core & soft] = Tissue.MARROW


def paint_girdles(canvas: Canvas, frame: BodyFrame) -> None:
    """Sternum, clavicles, scapulae, pelvis and femora."""
    _bone_tube(canvas, frame.path([(318.0, 0.0, 86.0), (420.0, 0.0, 95.0), (520.0, 0.0, 90.0)]), 9.0)
    for side in (-1, 1):
        clavicle = frame.path([(302.0, 18.0 * side, 74.0), (296.0, 70.0 * side, 70.0), (292.0, 145.0 * side, 10.0)])
        _bone_tube(canvas, clavicle, 7.0)
        _bone_ellipsoid(
            canvas,
            frame.point(392.0, 95.0 * side, -80.0),
            frame.size(55.0, 9.0, 80.0),
            rotation_about_si(np.deg2rad(20.0 * side)),
        )
        _bone_ellipsoid(
            canvas,
            frame.point(818.0, 100.0 * side, -22.0),
            frame.size(12.0, 62.0, 60.0),
            rotation_about_si(np.deg2rad(-35.0 * side)),
        )
        _bone_tube(
            canvas,
            frame.path([(872.0, 100.0 * side, -15.0), (915.0, 92.0 * side, 5.0), (948.0, 25.0 * side, 55.0)]),
            13.0,
        )
        _bone_tube(canvas, frame.path([(915.0, 92.0 * side, 5.0), (968.0, 70.0 * side, -22.0)]), 12.0)
        _bone_ellipsoid(canvas, frame.point(915.0, 95.0 * side, 0.0), np.full(3, 24.0 * frame.width_scale))
        femur = frame.path(
            [
                (915.0, 95.0 * side, 0.0),
                (950.0, 118.0 * side, 0.0),
                (1150.0, 104.0 * side, 8.0),
                (1400.0, 95.0 * side, 10.0),
            ]
        )
        _bone_tube(canvas, femur, np.array([16.0, 15.0, 14.0, 13.0]) * frame.width_scale)


def paint_arm_bones(
    canvas: Canvas, frame: BodyFrame, profile: TorsoProfile, traits: PatientTraits, state: StudyState
) -> None:
    """Humerus and forearm bones along each arm's centre line."""
    for side in (-1, 1):
        path, _ = arm_path(frame, profile, traits, state, side)
        _bone_tube(canvas, path[:3], np.array([12.0, 11.0, 9.0]) * frame.width_scale)
        _bone_tube(canvas, path[2:], 8.0 * frame.width_scale)


def paint_mandible(canvas: Canvas, frame: BodyFrame, traits: PatientTraits) -> None:
    """The lower jaw, a U-shaped bar under the face."""
    s = traits.head_scale
    path = frame.path(
        [
            (195.0, -48.0 * s, -5.0),
            (218.0, -40.0 * s, 35.0 * s),
            (224.0, 0.0, 62.0 * s),
            (218.0, 40.0 * s, 35.0 * s),
            (195.0, 48.0 * s, -5.0),
        ]
    )
    _bone_tube(canvas, path, 7.0)


def paint_skeleton(
    canvas: Canvas, frame: BodyFrame, profile: TorsoProfile, traits: PatientTraits, state: StudyState
) -> None:
    """Draw all bones of the phantom."""
    paint_ribs(canvas, frame, profile)
    paint_spine(canvas, frame)
    paint_girdles(canvas, frame)
    paint_arm_bones(canvas, frame, profile, traits, state)
    paint_mandible(canvas, frame, traits)
