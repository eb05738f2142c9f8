# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The lesion catalogue: per-tracer burden tables (counts, sizes, peak uptake) and the sites lesions grow in.

Numbers are calibrated to published autoPET statistics (``docs/synthetic_data.md`` cites them); the sampling and
painting that use them live in :mod:`scripts.synthetic.lesions`.
"""

from __future__ import annotations

from dataclasses import dataclass

from scripts.synthetic.tissues import SOFT_TISSUES, Tissue

MIN_DIAMETER_MM = 4.0
MAX_DIAMETER_MM = 70.0
MIN_CONTRAST = 1.3
MAX_PEAK_SUV = 80.0


@dataclass(frozen=True)
class LesionBurden:
    """How much disease a positive study of one tracer carries (all log-normal; see docs/synthetic_data.md).

    Lesions per positive study: ``1 + floor(lognormal(log(count_median), count_sigma))``. The first lesion is
    the index lesion, the others satellites; diameters are equivalent-sphere diameters of the un-lumped
    ellipsoid. ``peak_suv`` is the activity at the lesion centre before the PET blur.
    """

    count_median: float
    count_sigma: float
    index_diameter_mm: float
    diameter_mm: float
    diameter_sigma: float
    peak_suv: float
    peak_sigma: float
    faint_share: float  # lesions whose peak is only FAINT_CONTRAST x the local background (low-avidity disease)


FAINT_CONTRAST = (1.4, 2.5)
BURDEN = {
    "fdg": LesionBurden(
        count_median=3.5,
        count_sigma=1.1,
        index_diameter_mm=35.0,
        diameter_mm=15.0,
        diameter_sigma=0.4,
        peak_suv=9.0,
        peak_sigma=0.5,
        faint_share=0.15,
    ),
    "psma": LesionBurden(
        count_median=5.0,
        count_sigma=1.2,
        index_diameter_mm=25.0,
        diameter_mm=13.0,
        diameter_sigma=0.38,
        peak_suv=13.0,
        peak_sigma=0.75,
        faint_share=0.1,
    ),
}


@dataclass(frozen=True)
class Site:
    """A lesion site: the tissues a lesion there may occupy, and (for lymph-node stations) template anchors.

    Anchors are (u, x, y) template points on the patient's left; each is mirrored to the right as well.
    Sites without anchors pick their centre at a random voxel of their tissues.
    """

    tissues: frozenset[Tissue]
    anchors: tuple[tuple[float, float, float], ...] = ()
    spread_mm: float = 12.0
    max_diameter_mm: float = MAX_DIAMETER_MM
    ct_look: str = "soft"  # soft | hypodense | bone | iso
    centre_tissues: frozenset[Tissue] | None = None  # where the centre may lie (default: ``tissues``)


NODE_TISSUES = SOFT_TISSUES
SITES: dict[str, Site] = {
    "cervical": Site(NODE_TISSUES, ((220.0, 35.0, 10.0), (250.0, 40.0, 5.0), (282.0, 45.0, 0.0), (300.0, 62.0, 10.0))),
    "axillary": Site(NODE_TISSUES, ((355.0, 132.0, -5.0), (395.0, 126.0, 0.0)), spread_mm=15.0),
    "mediastinal": Site(
        NODE_TISSUES, ((352.0, 10.0, 22.0), (392.0, 14.0, 2.0), (402.0, 0.0, -14.0), (412.0, 38.0, 0.0)), spread_mm=10.0
    ),
    "paraaortic": Site(
        NODE_TISSUES,
        ((650.0, 28.0, -18.0), (710.0, 26.0, -10.0), (770.0, 22.0, -6.0), (700.0, 30.0, 30.0)),
        spread_mm=14.0,
    ),
    "iliac": Site(NODE_TISSUES, ((850.0, 55.0, -8.0), (890.0, 70.0, 12.0)), spread_mm=12.0),
    "inguinal": Site(NODE_TISSUES, ((960.0, 82.0, 55.0), (985.0, 86.0, 50.0)), spread_mm=12.0),
    "lung": Site(frozenset({Tissue.LUNG}), max_diameter_mm=60.0),
    "liver": Site(frozenset({Tissue.LIVER}), max_diameter_mm=60.0, ct_look="hypodense"),
    "spleen": Site(frozenset({Tissue.SPLEEN}), max_diameter_mm=40.0, ct_look="hypodense"),
    "bone": Site(
        frozenset({Tissue.MARROW, Tissue.BONE}),
        max_diameter_mm=45.0,
        ct_look="bone",
        centre_tissues=frozenset({Tissue.MARROW}),
    ),
    "prostate": Site(frozenset({Tissue.PROSTATE}), max_diameter_mm=40.0, ct_look="iso"),
    # Fallback when no other site had room: any soft-tissue voxel.
    "soft_tissue": Site(NODE_TISSUES, max_diameter_mm=30.0),
}
# Relative frequency of lesion sites per tracer (FDG: lymphoma, melanoma, lung cancer; PSMA: prostate cancer).
SITE_WEIGHTS = {
    "fdg": {
        "cervical": 1.0,
        "axillary": 1.0,
        "mediastinal": 1.5,
        "paraaortic": 1.0,
        "iliac": 0.8,
        "inguinal": 0.6,
        "lung": 1.5,
        "liver": 0.8,
        "spleen": 0.3,
        "bone": 1.0,
    },
    "psma": {
        "prostate": 1.5,
        "iliac": 2.0,
        "paraaortic": 1.0,
        "mediastinal": 0.3,
        "cervical": 0.2,
        "inguinal": 0.3,
        "bone": 2.5,
        "lung": 0.3,
        "liver": 0.3,
    },
}
SCLEROTIC_SHARE = {"fdg": 0.35, "psma": 0.75}
