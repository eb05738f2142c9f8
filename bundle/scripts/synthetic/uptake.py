# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Physiological tracer uptake (SUV) per tissue for FDG and PSMA, with between-subject variation.

Typical values from the clinical literature (SUVmean): FDG brain 7-10, liver ~2-2.5, blood pool ~1.5-2,
myocardium anywhere from background to >10 (depends on fasting), kidneys and urine high, bowel patchy;
PSMA kidneys 20-50, salivary glands 10-20, liver 5-7, spleen 5-8, bowel and ganglia moderate, brain low.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scripts.synthetic.tissues import Tissue, lookup


@dataclass(frozen=True)
class TracerProfile:
    """Uptake of one tracer: per tissue (median SUV, log-normal spread between subjects), texture amplitude."""

    name: str
    uptake: dict[Tissue, tuple[float, float]]
    texture: dict[Tissue, float]
    lesion_floor: float  # faint lesions and the minimum contrast are relative to max(local background, this SUV)


FDG = TracerProfile(
    name="fdg",
    uptake={
        Tissue.LUNG: (0.45, 0.2),
        Tissue.FAT: (0.35, 0.2),
        Tissue.MUSCLE: (0.75, 0.2),
        Tissue.BLOOD: (1.7, 0.15),
        Tissue.HEART: (3.0, 0.9),
        Tissue.LIVER: (2.3, 0.15),
        Tissue.SPLEEN: (1.9, 0.15),
        Tissue.KIDNEY: (2.8, 0.2),
        Tissue.URINE: (15.0, 0.6),
        Tissue.BLADDER: (25.0, 0.6),
        Tissue.BRAIN: (8.5, 0.2),
        Tissue.STOMACH: (2.2, 0.3),
        Tissue.PROSTATE: (1.6, 0.2),
        Tissue.GLANDS: (2.2, 0.25),
        Tissue.BOWEL: (1.6, 0.35),
        Tissue.BONE: (0.5, 0.2),
        Tissue.MARROW: (1.5, 0.2),
        Tissue.BROWN_FAT: (4.0, 0.5),
        Tissue.GANGLION: (0.9, 0.2),
    },
    texture={
        Tissue.BOWEL: 0.6,
        Tissue.HEART: 0.25,
        Tissue.STOMACH: 0.3,
        Tissue.BROWN_FAT: 0.4,
        Tissue.BRAIN: 0.12,
        Tissue.MARROW: 0.15,
        Tissue.MUSCLE: 0.12,
        Tissue.GLANDS: 0.15,
        Tissue.LUNG: 0.15,
    },
    lesion_floor=1.0,
)

PSMA = TracerProfile(
    name="psma",
    uptake={
        Tissue.LUNG: (0.35, 0.2),
        Tissue.FAT: (0.25, 0.2),
        Tissue.MUSCLE: (0.6, 0.2),
        Tissue.BLOOD: (1.3, 0.2),
        Tissue.HEART: (1.5, 0.2),
        Tissue.LIVER: (5.5, 0.25),
        Tissue.SPLEEN: (6.5, 0.3),
        Tissue.KIDNEY: (30.0, 0.3),
        Tissue.URINE: (20.0, 0.6),
        Tissue.BLADDER: (15.0, 0.8),
        Tissue.BRAIN: (0.3, 0.2),
        Tissue.STOMACH: (2.5, 0.3),
        Tissue.PROSTATE: (3.0, 0.3),
        Tissue.GLANDS: (14.0, 0.3),
        Tissue.BOWEL: (2.5, 0.4),
        Tissue.BONE: (0.4, 0.2),
        Tissue.MARROW: (1.0, 0.2),
        Tissue.BROWN_FAT: (0.25, 0.2),
        Tissue.GANGLION: (4.0, 0.3),
    },
    texture={
        Tissue.BOWEL: 0.5,
        Tissue.KIDNEY: 0.1,
        Tissue.GLANDS: 0.15,
        Tissue.SPLEEN: 0.1,
        Tissue.MARROW: 0.15,
        Tissue.STOMACH: 0.3,
        Tissue.LUNG: 0.15,
    },
    lesion_floor=0.8,
)

TRACERS = {"fdg": FDG, "psma": PSMA}
DEFAULT_TEXTURE = 0.08


def tracer_profile(name: str) -> TracerProfile:
    """The uptake profile of tracer ``name`` ("fdg" or "psma")."""
    try:
        return TRACERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown tracer {name!r}; choose one of {sorted(TRACERS)}") from None


def study_uptake(profile: TracerProfile, rng: np.random.Generator, brown_fat_active: bool) -> np.ndarray:
    """SUV per tissue id for one study: each tissue's median times a log-normal subject factor."""
    table = {}
    for tissue, (median, spread) in profile.uptake.items():
        table[tissue] = float(median * np.exp(rng.normal(0.0, spread)))
    if not brown_fat_active:
        table[Tissue.BROWN_FAT] = table[Tissue.FAT]
    return lookup(table)


def texture_amplitudes(profile: TracerProfile) -> np.ndarray:
    """Relative amplitude of the smooth within-tissue uptake variation, per tissue id."""
    return lookup(profile.texture, default=DEFAULT_TEXTURE)
