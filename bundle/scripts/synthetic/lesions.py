# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Tumour lesions: where they grow, how big and how hot, how they look in CT, and how they evolve.

A lesion is a lumpy, randomly oriented ellipsoid (4-50 mm across) clipped to the tissues of its site:
lymph-node stations (cervical, axillary, mediastinal and hilar, para-aortic and mesenteric, iliac,
inguinal), lung, liver, spleen, bone marrow and prostate. Its peak uptake is a contrast factor times the
local background (from barely visible, 1.3x, to very hot), larger lesions may have a necrotic centre.
The lesion mask, painted on the CT grid, is the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from scripts.synthetic.anatomy import Anatomy
from scripts.synthetic.shapes import Canvas, ellipsoid, random_lumps, random_rotation
from scripts.synthetic.tissues import SOFT_TISSUES, Tissue
from scripts.synthetic.uptake import TracerProfile

MIN_DIAMETER_MM = 4.0
MAX_DIAMETER_MM = 50.0
MIN_CONTRAST = 1.3
MAX_PEAK_SUV = 80.0


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
        NODE_TISSUES,
        ((352.0, 10.0, 22.0), (392.0, 14.0, 2.0), (402.0, 0.0, -14.0), (412.0, 38.0, 0.0)),
        spread_mm=10.0,
    ),
    "paraaortic": Site(
        NODE_TISSUES,
        ((650.0, 28.0, -18.0), (710.0, 26.0, -10.0), (770.0, 22.0, -6.0), (700.0, 30.0, 30.0)),
        spread_mm=14.0,
    ),
    "iliac": Site(NODE_TISSUES, ((850.0, 55.0, -8.0), (890.0, 70.0, 12.0)), spread_mm=12.0),
    "inguinal": Site(NODE_TISSUES, ((960.0, 82.0, 55.0), (985.0, 86.0, 50.0)), spread_mm=12.0),
    "lung": Site(frozenset({Tissue.LUNG})),
    "liver": Site(frozenset({Tissue.LIVER}), ct_look="hypodense"),
    "spleen": Site(frozenset({Tissue.SPLEEN}), max_diameter_mm=35.0, ct_look="hypodense"),
    "bone": Site(
        frozenset({Tissue.MARROW, Tissue.BONE}),
        max_diameter_mm=40.0,
        ct_look="bone",
        centre_tissues=frozenset({Tissue.MARROW}),
    ),
    "prostate": Site(frozenset({Tissue.PROSTATE}), max_diameter_mm=30.0, ct_look="iso"),
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


@dataclass(frozen=True)
class LesionSpec:
    """One lesion, in the patient frame (mm), independent of the grid it is drawn on."""

    site: str
    centre_mm: tuple[float, float, float]
    radii_mm: tuple[float, float, float]
    rotation: tuple[float, ...]  # 3x3, row-major
    lumps: tuple[float, ...]
    contrast: float  # peak uptake / local reference uptake
    necrotic: bool
    ct_look: str  # soft | hypodense | sclerotic | lytic | iso
    ct_shift_hu: float

    @property
    def diameter_mm(self) -> float:
        """Equivalent-sphere diameter of the (un-lumped) ellipsoid."""
        return float(2.0 * np.prod(self.radii_mm) ** (1.0 / 3.0))


class VoxelPicker:
    """Random voxels of given tissues, with the voxel lists computed once per tissue set."""

    def __init__(self, tissue: np.ndarray) -> None:
        self.tissue = tissue
        self.cache: dict[frozenset, np.ndarray] = {}

    def pick(self, tissues: frozenset[Tissue], rng: np.random.Generator) -> np.ndarray | None:
        """Index of a random voxel of ``tissues``, or None when there is none."""
        if tissues not in self.cache:
            codes = np.asarray(sorted(int(t) for t in tissues), dtype=np.uint8)
            self.cache[tissues] = np.flatnonzero(np.isin(self.tissue, codes))
        voxels = self.cache[tissues]
        if voxels.size == 0:
            return None
        return np.asarray(np.unravel_index(int(voxels[rng.integers(voxels.size)]), self.tissue.shape))


def _available_sites(tracer: str, anatomy: Anatomy) -> dict[str, float]:
    present = np.bincount(anatomy.tissue.ravel(), minlength=32) > 0
    weights = {}
    for name, weight in SITE_WEIGHTS[tracer].items():
        site = SITES[name]
        if site.anchors or any(present[int(t)] for t in site.tissues):
            weights[name] = weight
    return weights


def _place_centre(
    site: Site, anatomy: Anatomy, picker: VoxelPicker, rng: np.random.Generator, tries: int = 25
) -> np.ndarray | None:
    """A patient-frame centre (mm) inside the site's tissues, or None when none was found."""
    spacing = np.asarray(anatomy.grid.spacing)
    if not site.anchors:
        voxel = picker.pick(site.centre_tissues or site.tissues, rng)
        return None if voxel is None else (voxel + rng.uniform(-0.4, 0.4, 3)) * spacing
    codes = np.asarray(sorted(int(t) for t in site.tissues), dtype=np.uint8)
    for _ in range(tries):
        u, x, y = site.anchors[rng.integers(len(site.anchors))]
        side = 1.0 if rng.random() < 0.5 else -1.0
        centre = anatomy.frame.point(u, side * x, y) + rng.normal(0.0, site.spread_mm, 3)
        voxel = np.round(centre / spacing).astype(int)
        if np.all(voxel >= 0) and np.all(voxel < anatomy.tissue.shape) and anatomy.tissue[tuple(voxel)] in codes:
            return centre
    return None


def sample_lesion(
    site_name: str, tracer: TracerProfile, anatomy: Anatomy, picker: VoxelPicker, rng: np.random.Generator
) -> LesionSpec | None:
    """Draw one lesion at ``site_name``, or None when the site has no room in this anatomy."""
    site = SITES[site_name]
    centre = _place_centre(site, anatomy, picker, rng)
    if centre is None:
        return None
    diameter = float(np.exp(rng.uniform(np.log(MIN_DIAMETER_MM), np.log(site.max_diameter_mm))))
    radii = 0.5 * diameter * np.exp(rng.normal(0.0, 0.15, 3))
    contrast = float(np.exp(rng.uniform(np.log(MIN_CONTRAST), np.log(tracer.max_lesion_contrast))))
    ct_look, shift = site.ct_look, 0.0
    if ct_look == "bone":
        sclerotic = rng.random() < SCLEROTIC_SHARE[tracer.name]
        ct_look = "sclerotic" if sclerotic else "lytic"
        shift = float(rng.uniform(250.0, 700.0)) if sclerotic else 0.0
    elif ct_look == "hypodense":
        shift = float(-rng.uniform(10.0, 40.0))
    return LesionSpec(
        site=site_name,
        centre_mm=tuple(float(c) for c in centre),
        radii_mm=tuple(float(r) for r in radii),
        rotation=tuple(float(v) for v in random_rotation(rng).ravel()),
        lumps=tuple(float(v) for v in random_lumps(rng, 0.12 if diameter < 20 else 0.2)),
        contrast=contrast,
        necrotic=bool(diameter > 25.0 and rng.random() < 0.35),
        ct_look=ct_look,
        ct_shift_hu=shift,
    )


def sample_lesions(
    tracer: TracerProfile, anatomy: Anatomy, rng: np.random.Generator, max_lesions: int = 20
) -> list[LesionSpec]:
    """Draw the lesions of a positive study: 1 to ``max_lesions``, clustered in one to three active sites."""
    weights = _available_sites(tracer.name, anatomy)
    names = list(weights)
    probabilities = np.array([weights[n] for n in names]) / sum(weights.values())
    n_active = min(len(names), 1 + int(rng.poisson(0.8)))
    active = rng.choice(len(names), size=n_active, replace=False, p=probabilities)
    focus = np.full(len(names), 0.1 / len(names))
    focus[active] += 0.9 * probabilities[active] / probabilities[active].sum()
    count = int(min(max_lesions, 1 + np.floor(rng.lognormal(0.9, 1.0))))
    picker = VoxelPicker(anatomy.tissue)
    lesions = []
    for _ in range(count):
        site = names[int(rng.choice(len(names), p=focus / focus.sum()))]
        lesion = sample_lesion(site, tracer, anatomy, picker, rng)
        if lesion is not None:
            lesions.append(lesion)
    return lesions


def evolve_lesions(
    lesions: list[LesionSpec], tracer: TracerProfile, anatomy: Anatomy, rng: np.random.Generator, max_lesions: int = 20
) -> list[LesionSpec]:
    """The lesions at a follow-up study: each grows, shrinks or disappears, and new ones may appear."""
    evolved = []
    for lesion in lesions:
        if rng.random() < 0.15:
            continue
        factor = float(np.exp(rng.normal(0.0, 0.3)))
        radii = np.clip(np.asarray(lesion.radii_mm) * factor, MIN_DIAMETER_MM / 2, MAX_DIAMETER_MM / 2 * 1.2)
        contrast = float(
            np.clip(lesion.contrast * np.exp(rng.normal(0.0, 0.3)), MIN_CONTRAST, tracer.max_lesion_contrast)
        )
        evolved.append(replace(lesion, radii_mm=tuple(float(r) for r in radii), contrast=contrast))
    picker = VoxelPicker(anatomy.tissue)
    sites = sorted({lesion.site for lesion in lesions}) or list(_available_sites(tracer.name, anatomy))
    for _ in range(int(rng.poisson(0.7))):
        if len(evolved) >= max_lesions:
            break
        lesion = sample_lesion(sites[int(rng.integers(len(sites)))], tracer, anatomy, picker, rng)
        if lesion is not None:
            evolved.append(lesion)
    return evolved


def paint_lesions(
    lesions: list[LesionSpec],
    anatomy: Anatomy,
    tracer: TracerProfile,
    hu: np.ndarray,
    suv: np.ndarray,
    seg: np.ndarray,
) -> list[int]:
    """Draw ``lesions`` into the noise-free CT (``hu``), activity (``suv``) and mask (``seg``), in place.

    Returns the number of voxels each lesion covers (0 when it fell outside its tissues or the grid).
    """
    canvas = Canvas(anatomy.grid, anatomy.tissue)
    counts = []
    for lesion in lesions:
        shape = ellipsoid(
            canvas, lesion.centre_mm, lesion.radii_mm, np.reshape(lesion.rotation, (3, 3)), np.asarray(lesion.lumps)
        )
        if shape is None:
            counts.append(0)
            continue
        box, mask, rho = shape
        codes = np.asarray(sorted(int(t) for t in SITES[lesion.site].tissues), dtype=np.uint8)
        mask = mask & np.isin(anatomy.tissue[box], codes)
        if not mask.any():
            # Lesions smaller than a voxel still mark the voxel holding their centre.
            local = np.round(np.asarray(lesion.centre_mm) / canvas.spacing).astype(int) - [s.start for s in box]
            if np.all(local >= 0) and np.all(local < mask.shape) and anatomy.tissue[box][tuple(local)] in codes:
                mask[tuple(local)] = True
        count = int(np.count_nonzero(mask))
        counts.append(count)
        if count == 0:
            continue
        suv_box, hu_box = suv[box], hu[box]
        background = float(np.median(suv_box[mask]))
        peak = min(max(background, tracer.lesion_floor) * lesion.contrast, MAX_PEAK_SUV)
        r = np.minimum(rho[mask], 1.0)
        uptake = peak * (1.0 - 0.25 * r**2)
        if lesion.necrotic:
            uptake *= 1.0 - 0.75 * np.exp(-((r / 0.45) ** 2))
        suv_box[mask] = uptake
        if lesion.ct_look in ("soft", "lytic"):
            hu_box[mask] = 35.0 + lesion.ct_shift_hu
        elif lesion.ct_look in ("hypodense", "sclerotic"):
            hu_box[mask] += lesion.ct_shift_hu
        seg[box][mask] = 1
    return counts
