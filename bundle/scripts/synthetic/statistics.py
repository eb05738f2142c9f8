# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Lesion statistics of labelled studies, as a reader of the label would measure them.

Lesions are the label's 18-connected components (the autoPET metric's definition). Per lesion: volume,
SUVmax and SUVmean in the PET, the background around it (median of a 2-voxel shell outside every lesion),
its site (that of the nearest drawn lesion, when the drawn lesions are known) and whether a non-lesion voxel
hotter than its SUVmax lies within ``HOT_RADIUS_MM`` (a lesion beside a hot organ). ``docs/synthetic_data.md``
compares these with real data; ``bench/synthetic.py --statistics`` computes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scripts.evaluation.autopet_metrics import CONNECTIVITY_18
from scripts.synthetic.lesions import LesionSpec

HOT_RADIUS_MM = 20.0
SHELL_VOXELS = 2
VOLUME_BINS_ML = (1.0, 10.0)


@dataclass(frozen=True)
class LesionStats:
    """One labelled lesion (18-connected component of the label)."""

    volume_ml: float
    voxels: int
    suv_max: float
    suv_mean: float
    background_suv: float
    site: str
    beside_hotter: bool

    @property
    def contrast(self) -> float:
        """SUVmax over the background around the lesion."""
        return self.suv_max / max(self.background_suv, 1e-3)


def label_components(seg: np.ndarray) -> tuple[np.ndarray, int]:
    """The 18-connected components of a label (ids 1..n) and their number."""
    return ndimage.label(np.asarray(seg) > 0, structure=CONNECTIVITY_18)


def lesion_statistics(
    seg: np.ndarray, suv: np.ndarray, spacing: Sequence[float], lesions: Sequence[LesionSpec] = ()
) -> list[LesionStats]:
    """Statistics of every labelled lesion of one study; ``seg`` and ``suv`` share one grid (LAS or not).

    ``lesions`` (drawn lesions, patient-frame mm from voxel (0,0,0) of the LAS grid) only name the sites; give
    them only when the arrays are in LAS order.
    """
    seg, suv = np.asarray(seg) > 0, np.asarray(suv, dtype=np.float32)
    if seg.shape != suv.shape:
        raise ValueError(f"label {seg.shape} and PET {suv.shape} must share one grid to measure lesions")
    spacing = np.asarray(spacing, dtype=np.float64)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    components, count = label_components(seg)
    reach = np.ceil(HOT_RADIUS_MM / spacing).astype(int)
    centres = np.array([lesion.centre_mm for lesion in lesions]) if lesions else None
    stats = []
    for index, box in enumerate(ndimage.find_objects(components), start=1):
        grown = tuple(
            slice(max(s.start - r, 0), min(s.stop + r, n)) for s, r, n in zip(box, reach, seg.shape, strict=True)
        )
        inner = components[grown] == index
        pet, others = suv[grown], seg[grown]
        values = pet[inner]
        shell = ndimage.binary_dilation(inner, iterations=SHELL_VOXELS) & ~others
        background = float(np.median(pet[shell])) if shell.any() else 0.0
        near = ndimage.distance_transform_edt(~inner, sampling=spacing) <= HOT_RADIUS_MM
        beside = bool(np.any(pet[near & ~others] > values.max()))
        site = "unknown"
        if centres is not None:
            centre = (np.argwhere(inner).mean(axis=0) + [s.start for s in grown]) * spacing
            site = lesions[int(np.argmin(np.linalg.norm(centres - centre, axis=1)))].site
        stats.append(
            LesionStats(
                volume_ml=int(values.size) * voxel_ml,
                voxels=int(values.size),
                suv_max=float(values.max()),
                suv_mean=float(values.mean()),
                background_suv=background,
                site=site,
                beside_hotter=beside,
            )
        )
    assert len(stats) == count
    return stats


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    if len(values) == 0:
        return {"median": float("nan"), "p10": float("nan"), "p90": float("nan")}
    p10, median, p90 = np.percentile(np.asarray(values, dtype=np.float64), [10, 50, 90])
    return {"median": float(median), "p10": float(p10), "p90": float(p90)}


def summarize(studies: Sequence[Sequence[LesionStats]]) -> dict:
    """Cohort summary: per positive study (lesion count, tumour volume) and per lesion (volume, SUV, contrast).

    ``studies`` holds one list per study; an empty list is a negative study.
    """
    positives = [s for s in studies if len(s)]
    every = [lesion for study in positives for lesion in study]
    volumes = np.array([lesion.volume_ml for lesion in every])
    small, large = VOLUME_BINS_ML
    by_site: dict[str, list[float]] = {}
    for lesion in every:
        by_site.setdefault(lesion.site, []).append(lesion.contrast)
    return {
        "studies": len(studies),
        "negative_share": 1.0 - len(positives) / max(len(studies), 1),
        "lesions_per_positive_study": _quantiles([len(s) for s in positives]),
        "ml_per_positive_study": _quantiles([sum(lesion.volume_ml for lesion in s) for s in positives]),
        "lesions": len(every),
        "ml_per_lesion": _quantiles(volumes),
        "share_below_1_ml": float(np.mean(volumes < small)) if every else float("nan"),
        "share_1_to_10_ml": float(np.mean((volumes >= small) & (volumes <= large))) if every else float("nan"),
        "share_above_10_ml": float(np.mean(volumes > large)) if every else float("nan"),
        "suv_max": _quantiles([lesion.suv_max for lesion in every]),
        "suv_mean": _quantiles([lesion.suv_mean for lesion in every]),
        "contrast": _quantiles([lesion.contrast for lesion in every]),
        "share_contrast_below_2": float(np.mean([lesion.contrast < 2.0 for lesion in every])) if every else 0.0,
        "share_beside_hotter": float(np.mean([lesion.beside_hotter for lesion in every])) if every else 0.0,
        "contrast_by_site": {site: _quantiles(values) for site, values in sorted(by_site.items())},
        "lesions_by_site": {site: len(values) for site, values in sorted(by_site.items())},
    }
