# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The random traits of one synthetic subject: fixed per patient, or per study (drawn in :mod:`.anatomy`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
