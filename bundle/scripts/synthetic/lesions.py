# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Tumour lesions: where they grow, how many, how big and how hot, how they look in CT, and how they evolve.

A lesion is a lumpy, randomly oriented ellipsoid clipped to the tissues of its site: lymph-node stations
(cervical, axillary, mediastinal and hilar, para-aortic and mesenteric, iliac, inguinal), lung, liver,
spleen, bone marrow and prostate. Counts, sizes and peak uptake follow per-tracer burden tables
(:data:`BURDEN`, calibrated in ``docs/synthetic_data.md``): one index lesion and smaller satellites, peak
SUV log-normal and never below a faint 1.3x the local background; larger lesions may have a necrotic
centre. Lesions smaller than a voxel add their activity to the voxel holding their centre but are never
labelled; which drawn lesions a reader could see is decided after the PET blur (``visibility``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scripts.synthetic.anatomy import Anatomy
from scripts.synthetic.lesion_catalogue import (  # noqa: F401 (re-exported: the catalogue's names)
    BURDEN,
    FAINT_CONTRAST,
    MAX_DIAMETER_MM,
    MAX_PEAK_SUV,
    MIN_CONTRAST,
    MIN_DIAMETER_MM,
    NODE_TISSUES,
    SCLEROTIC_SHARE,
    SITE_WEIGHTS,
    SITES,
    LesionBurden,
    Site,
)
from scripts.synthetic.shapes import Canvas, ellipsoid, random_lumps, random_rotation
from scripts.synthetic.tissues import Tissue
from scripts.synthetic.uptake import TracerProfile


@dataclass(frozen=True)
class LesionSpec:
    """One lesion, in the patient frame (mm), independent of the grid it is drawn on."""

    site: str
    centre_mm: tuple[float, float, float]
    radii_mm: tuple[float, float, float]
    rotation: tuple[float, ...]  # 3x3, row-major
    lumps: tuple[float, ...]
    peak_suv: float  # activity at the centre before blur (at least MIN_CONTRAST x the local background)
    faint: float  # > 0: the peak is this many times the local background instead (low-avidity lesion)
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
    site_name: str,
    tracer: TracerProfile,
    anatomy: Anatomy,
    picker: VoxelPicker,
    rng: np.random.Generator,
    index: bool = False,
) -> LesionSpec | None:
    """Draw one lesion at ``site_name`` (the index lesion when ``index``), or None when the site has no room."""
    site = SITES[site_name]
    centre = _place_centre(site, anatomy, picker, rng)
    if centre is None:
        return None
    burden = BURDEN[tracer.name]
    median = burden.index_diameter_mm if index else burden.diameter_mm
    diameter = median * float(np.exp(rng.normal(0.0, burden.diameter_sigma)))
    diameter = float(np.clip(diameter, MIN_DIAMETER_MM, site.max_diameter_mm))
    radii = 0.5 * diameter * np.exp(rng.normal(0.0, 0.15, 3))
    peak = float(min(burden.peak_suv * np.exp(rng.normal(0.0, burden.peak_sigma)), MAX_PEAK_SUV))
    faint = float(rng.uniform(*FAINT_CONTRAST)) if rng.random() < burden.faint_share else 0.0
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
        peak_suv=peak,
        faint=faint,
        necrotic=bool(diameter > 25.0 and rng.random() < 0.35),
        ct_look=ct_look,
        ct_shift_hu=shift,
    )


def sample_lesions(
    tracer: TracerProfile, anatomy: Anatomy, rng: np.random.Generator, max_lesions: int = 60
) -> list[LesionSpec]:
    """Draw the lesions of a positive study: 1 to ``max_lesions``, clustered in one to three active sites."""
    weights = _available_sites(tracer.name, anatomy)
    names = list(weights)
    probabilities = np.array([weights[n] for n in names]) / sum(weights.values())
    n_active = min(len(names), 1 + int(rng.poisson(0.8)))
    active = rng.choice(len(names), size=n_active, replace=False, p=probabilities)
    focus = np.full(len(names), 0.1 / len(names))
    focus[active] += 0.9 * probabilities[active] / probabilities[active].sum()
    burden = BURDEN[tracer.name]
    count = int(min(max_lesions, 1 + np.floor(rng.lognormal(np.log(burden.count_median), burden.count_sigma))))
    picker = VoxelPicker(anatomy.tissue)
    lesions = []
    for number in range(count):
        site = names[int(rng.choice(len(names), p=focus / focus.sum()))]
        lesion = sample_lesion(site, tracer, anatomy, picker, rng, index=number == 0)
        if lesion is not None:
            lesions.append(lesion)
    return lesions


def evolve_lesions(
    lesions: list[LesionSpec], tracer: TracerProfile, anatomy: Anatomy, rng: np.random.Generator, max_lesions: int = 60
) -> list[LesionSpec]:
    """The lesions at a follow-up study: each grows, shrinks or disappears, and new ones may appear."""
    evolved = []
    for lesion in lesions:
        if rng.random() < 0.15:
            continue
        factor = float(np.exp(rng.normal(0.0, 0.3)))
        radii = np.clip(np.asarray(lesion.radii_mm) * factor, MIN_DIAMETER_MM / 2, MAX_DIAMETER_MM / 2)
        peak = float(min(lesion.peak_suv * np.exp(rng.normal(0.0, 0.3)), MAX_PEAK_SUV))
        evolved.append(replace(lesion, radii_mm=tuple(float(r) for r in radii), peak_suv=peak))
    picker = VoxelPicker(anatomy.tissue)
    sites = sorted({lesion.site for lesion in lesions}) or list(_available_sites(tracer.name, anatomy))
    for _ in range(int(rng.poisson(0.7))):
        if len(evolved) >= max_lesions:
            break
        lesion = sample_lesion(sites[int(rng.integers(len(sites)))], tracer, anatomy, picker, rng)
        if lesion is not None:
            evolved.append(lesion)
    return evolved


@dataclass
class PaintedLesion:
    """Where a drawn lesion landed on the grid: its box and voxel mask (empty when smaller than a voxel)."""

    box: tuple[slice, slice, slice] | None
    mask: np.ndarray | None

    @property
    def voxels(self) -> int:
        """Number of voxels the lesion covers."""
        return 0 if self.mask is None else int(np.count_nonzero(self.mask))


def paint_lesions(
    lesions: list[LesionSpec], anatomy: Anatomy, tracer: TracerProfile, hu: np.ndarray, suv: np.ndarray
) -> list[PaintedLesion]:
    """Draw ``lesions`` into the noise-free CT (``hu``) and activity (``suv``), in place.

    A lesion covers the voxels of its site's tissues inside its outline. One smaller than a voxel (no voxel
    centre inside) adds its activity to the voxel holding its centre, scaled by its share of that voxel's
    volume, and covers nothing. Returns, per lesion, the voxels it covers: the candidates for the label.
    """
    canvas = Canvas(anatomy.grid, anatomy.tissue)
    voxel_ml = float(np.prod(canvas.spacing)) / 1000.0
    painted = []
    for lesion in lesions:
        shape = ellipsoid(
            canvas, lesion.centre_mm, lesion.radii_mm, np.reshape(lesion.rotation, (3, 3)), np.asarray(lesion.lumps)
        )
        codes = np.asarray(sorted(int(t) for t in SITES[lesion.site].tissues), dtype=np.uint8)
        if shape is not None:
            box, mask, rho = shape
            mask = mask & np.isin(anatomy.tissue[box], codes)
        if shape is None or not mask.any():
            _add_sub_voxel_activity(lesion, canvas, suv, voxel_ml)
            painted.append(PaintedLesion(None, None))
            continue
        suv_box, hu_box = suv[box], hu[box]
        reference = max(float(np.median(suv_box[mask])), tracer.lesion_floor)
        peak = lesion.faint * reference if lesion.faint else max(lesion.peak_suv, MIN_CONTRAST * reference)
        peak = min(peak, MAX_PEAK_SUV)
        r = np.minimum(rho[mask], 1.0)
        uptake = peak * (1.0 - 0.25 * r**2)
        if lesion.necrotic:
            uptake *= 1.0 - 0.75 * np.exp(-((r / 0.45) ** 2))
        suv_box[mask] = uptake
        if lesion.ct_look in ("soft", "lytic"):
            hu_box[mask] = 35.0 + lesion.ct_shift_hu
        elif lesion.ct_look in ("hypodense", "sclerotic"):
            hu_box[mask] += lesion.ct_shift_hu
        painted.append(PaintedLesion(box, mask))
    return painted


def _add_sub_voxel_activity(lesion: LesionSpec, canvas: Canvas, suv: np.ndarray, voxel_ml: float) -> None:
    """Partial volume of a lesion smaller than a voxel: its activity spread over the voxel holding its centre."""
    voxel = np.round(np.asarray(lesion.centre_mm) / canvas.spacing).astype(int)
    if np.any(voxel < 0) or np.any(voxel >= canvas.shape):
        return
    volume_ml = np.pi / 6.0 * lesion.diameter_mm**3 / 1000.0
    share = min(volume_ml / voxel_ml, 1.0)
    index = tuple(voxel)
    suv[index] = (1.0 - share) * suv[index] + share * 0.85 * lesion.peak_suv
