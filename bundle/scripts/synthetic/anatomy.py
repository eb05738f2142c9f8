# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""One subject's anatomy: the random traits that make each patient different, and the tissue map.

:func:`build_anatomy` draws the body outline, organs, vessels and skeleton procedurally, or, given a
real organ-label map, draws everything except the mapped organs around it and copies the organs in.
Patient traits are fixed for a patient; the study state (arm position, bladder filling, contrast
agent, ...) may change between the studies of one patient.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scripts.synthetic import body, organs, skeleton
from scripts.synthetic.fields import SmoothField
from scripts.synthetic.frame import BodyFrame, procedural_frame
from scripts.synthetic.grid import Grid, las_grid
from scripts.synthetic.organ_map import (
    OrganMap,
    OrganStats,
    fit_frame,
    fit_profile_to_organs,
    organ_box,
    organ_stats,
    split_mapped_organs,
)
from scripts.synthetic.shapes import N_LUMP_TERMS, Canvas
from scripts.synthetic.traits import PatientTraits, StudyState


def sample_patient_traits(rng: np.random.Generator, male_share: float = 0.5) -> PatientTraits:
    """Draw a patient's fixed traits."""
    male = bool(rng.random() < male_share)
    jitter = {}
    for name in organs.ORGAN_NAMES:  # fixed order: the draws never depend on the tracer
        offset = rng.normal(0.0, 6.0, 3)
        sizes = np.exp(rng.normal(0.0, 0.08, 3))
        lumps = rng.normal(0.0, 0.05, N_LUMP_TERMS)
        jitter[name] = np.concatenate([offset, sizes, lumps])
    return PatientTraits(
        male=male,
        height_scale=float(rng.uniform(0.88, 1.0) * (1.0 if male else 0.95)),
        width_scale=float(np.clip(rng.normal(1.0 if male else 0.93, 0.06), 0.78, 1.2)),
        fat_scale=float(np.exp(rng.normal(0.0, 0.45))),
        visceral_fat=float(rng.uniform(0.25, 0.65)),
        head_scale=float(rng.normal(1.0, 0.04)),
        vertex_margin_mm=float(rng.uniform(5.0, 40.0)),
        offset_mm=(float(rng.normal(0.0, 12.0)), float(rng.normal(-15.0, 10.0))),
        tilt=float(rng.normal(0.0, 0.02)),
        organ_jitter=jitter,
    )


def sample_study_state(rng: np.random.Generator) -> StudyState:
    """Draw the state of one study of a patient."""
    return StudyState(
        arms_up=bool(rng.random() < 0.6),
        bladder_fill=float(rng.uniform(0.55, 1.45)),
        ureter_fill=float(rng.uniform(0.1, 0.7)),
        contrast_enhanced=bool(rng.random() < 0.5),
        brown_fat_active=bool(rng.random() < 0.12),
        layout_seed=int(rng.integers(2**31)),
    )


@dataclass
class Anatomy:
    """A subject's tissue map (LAS order, ids of :class:`~scripts.synthetic.tissues.Tissue`) and its frame."""

    grid: Grid
    tissue: np.ndarray
    frame: BodyFrame
    profile: body.TorsoProfile
    traits: PatientTraits
    state: StudyState
    from_organ_map: bool


def build_anatomy(grid: Grid, traits: PatientTraits, state: StudyState, organ_map: OrganMap | None = None) -> Anatomy:
    """Draw a subject's tissue map on ``grid`` (LAS), procedurally or around the organs of ``organ_map``."""
    layout_rng = np.random.default_rng(state.layout_seed)
    if organ_map is None:
        frame = procedural_frame(
            grid, traits.height_scale, traits.width_scale, traits.vertex_margin_mm, traits.offset_mm, traits.tilt
        )
        profile = body.torso_profile(frame, traits)
    else:
        grid = organ_map.grid
        frame = fit_frame(organ_map, traits, template_stats())
        box = organ_box(organ_map.labels, grid)
        profile = fit_profile_to_organs(body.torso_profile(frame, traits), box, grid.spacing[2])
    canvas = Canvas(grid)
    bowel_field = SmoothField(grid, 28.0, layout_rng)
    gas_field = SmoothField(grid, 14.0, layout_rng)
    body.paint_table(canvas, frame, profile)
    body.paint_torso(canvas, frame, profile, traits, bowel_field, gas_field, lungs=organ_map is None)
    body.paint_head(canvas, frame, traits, brain=organ_map is None)
    body.paint_limbs(canvas, frame, profile, traits, state)
    organs.paint_vessels(canvas, frame, traits)
    if organ_map is None:
        organs.paint_organs(canvas, frame, traits, state)
    skeleton.paint_skeleton(canvas, frame, profile, traits, state)
    organs.paint_small_structures(canvas, frame, traits, state, layout_rng)
    if organ_map is not None:
        mapped = organ_map.labels > 0
        canvas.tissue[mapped] = organ_map.labels[mapped]
        split_mapped_organs(canvas)
    return Anatomy(grid, canvas.tissue, frame, profile, traits, state, organ_map is not None)


@functools.lru_cache(maxsize=1)
def template_stats() -> dict[int, OrganStats]:
    """Organ statistics of the standard procedural adult, in template mm (x, y, -u).

    Measured once on a coarse procedural phantom with all subject scales at 1, so the landmark table
    always matches the drawing code.
    """
    neutral = np.concatenate([np.zeros(3), np.ones(3), np.zeros(N_LUMP_TERMS)])
    traits = PatientTraits(
        male=True,
        height_scale=1.0,
        width_scale=1.0,
        fat_scale=1.0,
        visceral_fat=0.5,
        head_scale=1.0,
        vertex_margin_mm=0.0,
        offset_mm=(0.0, 0.0),
        tilt=0.0,
        organ_jitter={name: neutral for name in organs.ORGAN_NAMES},
    )
    state = StudyState(
        arms_up=True, bladder_fill=1.0, ureter_fill=0.0, contrast_enhanced=False, brown_fat_active=False, layout_seed=0
    )
    grid = las_grid((100, 100, 210), (5.0, 5.0, 5.0))
    anatomy = build_anatomy(grid, traits, state)
    stats = organ_stats(anatomy.tissue, grid)
    # Convert to template coordinates: x and y from the body centre, height as -u (vertex at 0).
    frame = anatomy.frame
    origin = np.array([frame.centre_x[0], frame.centre_y[0], float(frame.si(0.0))])
    for organ, s in stats.items():
        stats[organ] = OrganStats(s.centroid - origin, s.low - origin, s.high - origin, s.cut)
    return stats
