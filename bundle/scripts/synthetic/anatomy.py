# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""One subject's anatomy: the random traits that make each patient different, and the tissue map.

:func:`build_anatomy` draws the body outline, organs, vessels and skeleton procedurally, or, given a
real organ-label map, draws everything except the mapped organs around it and copies the organs in.
Patient traits are fixed for a patient; the study state (arm position, bladder filling, contrast
agent, ...) may change between the studies of one patient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scripts.synthetic import body, organs, skeleton
from scripts.synthetic.fields import SmoothField
from scripts.synthetic.frame import BodyFrame, procedural_frame
from scripts.synthetic.grid import Grid
from scripts.synthetic.organ_map import OrganMap, fit_frame, fit_profile_to_organs, organ_box, split_mapped_organs
from scripts.synthetic.shapes import N_LUMP_TERMS, Canvas


@dataclass(frozen=True)
class PatientTraits:
    """What stays the same across the studies of one patient."""

    male: bool
    height_scale: float  # body length relative to the standard adult
    width_scale: float  # lean-body width relative to the standard adult
    fat_scale: float  # subcutaneous fat relative to the standard adult
    visceral_fat: float  # share of the abdominal cavity (between organs) that is fat rather than bowel
    head_scale: float
    vertex_margin_mm: float  # gap between the top of the field of view and the vertex
    offset_mm: tuple[float, float]  # body-centre shift in the field of view (x, y)
    tilt: float  # lateral drift of the midline, mm per mm
    organ_jitter: dict[str, np.ndarray]  # per organ: centre offset (3, mm), size factors (3), outline lumps


@dataclass(frozen=True)
class StudyState:
    """What may change between two studies of one patient."""

    arms_up: bool
    bladder_fill: float  # bladder size factor
    ureter_fill: float  # share of the ureter segments that hold (hot) urine at scan time
    contrast_enhanced: bool  # portal-venous CT contrast agent
    brown_fat_active: bool  # cold-activated brown fat (FDG-avid)
    layout_seed: int  # bowel loops and gas


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
        frame = fit_frame(organ_map, traits)
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
