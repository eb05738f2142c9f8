# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The tissue classes of the phantom and their CT numbers (Hounsfield units).

Ids 1-10 are the autoPET organ-label ids (TotalSegmentator organs on the PET grid), so a real organ map
can be copied into the tissue map unchanged. Ids from 11 on are the tissues the phantom adds.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Tissue(IntEnum):
    """Tissue label of one phantom voxel."""

    AIR = 0
    SPLEEN = 1
    KIDNEY = 2
    LIVER = 3
    BLADDER = 4
    LUNG = 5
    BRAIN = 6
    HEART = 7  # myocardium
    STOMACH = 8
    PROSTATE = 9
    GLANDS = 10  # parotid and submandibular glands
    FAT = 11
    MUSCLE = 12  # also other lean soft tissue
    BONE = 13  # cortical bone
    MARROW = 14  # cancellous bone with red marrow
    BLOOD = 15  # aorta, vena cava, heart chambers
    BOWEL = 16
    URINE = 17  # renal pelvis and ureters
    BROWN_FAT = 18
    GAS = 19  # airways, stomach and bowel gas
    TABLE = 20  # scanner couch
    GANGLION = 21  # sympathetic ganglia (PSMA-avid)


N_TISSUES = max(Tissue) + 1

# Organ-label ids of the autoPET organ maps (same numbers as above).
ORGAN_MAP_IDS = tuple(range(1, 11))

# Tissues that lesions may replace in the soft-tissue (lymph-node) sites.
SOFT_TISSUES = frozenset({Tissue.FAT, Tissue.MUSCLE, Tissue.BROWN_FAT, Tissue.BOWEL})

# Mean CT number (HU) per tissue without contrast agent, and in the portal-venous phase after
# intravenous contrast (where it differs). Values follow standard CT references: air -1000, lung about
# -850, fat about -100, muscle 40-60, liver 55-65, cancellous bone 200-400, cortical bone 1000-1200.
HU_NATIVE: dict[Tissue, float] = {
    Tissue.AIR: -1000.0,
    Tissue.SPLEEN: 48.0,
    Tissue.KIDNEY: 32.0,
    Tissue.LIVER: 60.0,
    Tissue.BLADDER: 8.0,
    Tissue.LUNG: -850.0,
    Tissue.BRAIN: 34.0,
    Tissue.HEART: 42.0,
    Tissue.STOMACH: 22.0,
    Tissue.PROSTATE: 40.0,
    Tissue.GLANDS: 15.0,
    Tissue.FAT: -100.0,
    Tissue.MUSCLE: 50.0,
    Tissue.BONE: 1050.0,
    Tissue.MARROW: 260.0,
    Tissue.BLOOD: 42.0,
    Tissue.BOWEL: 30.0,
    Tissue.URINE: 8.0,
    Tissue.BROWN_FAT: -70.0,
    Tissue.GAS: -980.0,
    Tissue.TABLE: 150.0,
    Tissue.GANGLION: 40.0,
}
HU_CONTRAST: dict[Tissue, float] = {
    Tissue.SPLEEN: 120.0,
    Tissue.KIDNEY: 170.0,
    Tissue.LIVER: 105.0,
    Tissue.HEART: 100.0,
    Tissue.BLOOD: 170.0,
    Tissue.BOWEL: 60.0,
    Tissue.MUSCLE: 58.0,
    Tissue.GLANDS: 60.0,
}
# How much each tissue's mean varies between subjects (HU, one standard deviation).
HU_SUBJECT_SD: dict[Tissue, float] = {
    Tissue.LUNG: 30.0,
    Tissue.FAT: 10.0,
    Tissue.BONE: 120.0,
    Tissue.MARROW: 60.0,
    Tissue.LIVER: 8.0,
}
# Smooth within-tissue variation (HU, one standard deviation): lung density gradients, bowel content.
HU_TEXTURE: dict[Tissue, float] = {
    Tissue.LUNG: 40.0,
    Tissue.BOWEL: 25.0,
    Tissue.MARROW: 60.0,
    Tissue.BONE: 150.0,
    Tissue.FAT: 8.0,
    Tissue.MUSCLE: 6.0,
    Tissue.LIVER: 5.0,
}


def lookup(table: dict[Tissue, float], default: float = 0.0) -> np.ndarray:
    """A float32 array indexed by tissue id, from a per-tissue table."""
    values = np.full(N_TISSUES, default, dtype=np.float32)
    for tissue, value in table.items():
        values[int(tissue)] = value
    return values
