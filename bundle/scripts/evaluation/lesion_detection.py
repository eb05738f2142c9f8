# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Lesion-wise detection: which ground-truth lesions a prediction hits, by lesion volume, and its false positives.

Lesions and predicted components are 18-connected components, as in the autoPET metrics: a lesion counts as
hit when at least one predicted voxel lies in it, and a predicted component is a false positive when none of
its voxels lies in a lesion. Hits are reported in volume bins (< 1 ml, 1-10 ml, > 10 ml).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from scripts.evaluation.autopet_metrics import CONNECTIVITY_18
from scripts.evaluation.mask_scoring import check_same_grid, load_mask

VOLUME_BINS_ML = (1.0, 10.0)
BIN_NAMES = ("<1 ml", "1-10 ml", ">10 ml")


@dataclass(frozen=True)
class StudyDetection:
    """Per ground-truth lesion its volume and whether it was hit; the number of false-positive components."""

    lesion_ml: tuple[float, ...]
    lesion_hit: tuple[bool, ...]
    fp_components: int


def volume_bin(volume_ml: float) -> str:
    """The bin name of a lesion volume (the middle bin includes both ends)."""
    low, high = VOLUME_BINS_ML
    return BIN_NAMES[0] if volume_ml < low else BIN_NAMES[1] if volume_ml <= high else BIN_NAMES[2]


def study_detection(gt: np.ndarray, pred: np.ndarray, voxel_ml: float) -> StudyDetection:
    """Detection result of one study (``gt`` and ``pred`` boolean masks on one grid)."""
    gt, pred = np.asarray(gt, dtype=bool), np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} must share one grid")
    lesions, n_lesions = ndimage.label(gt, structure=CONNECTIVITY_18)
    sizes = np.bincount(lesions.ravel(), minlength=n_lesions + 1)[1:]
    hit = np.zeros(n_lesions + 1, dtype=bool)
    hit[lesions[gt & pred]] = True
    components, n_components = ndimage.label(pred, structure=CONNECTIVITY_18)
    true_components = np.unique(components[gt & pred])
    fp = n_components - int(np.count_nonzero(true_components))
    return StudyDetection(tuple(float(s) * voxel_ml for s in sizes), tuple(bool(h) for h in hit[1:]), fp)


def detect_files(pairs: Sequence[tuple[str, Path, Path]]) -> dict[str, StudyDetection]:
    """Detection of every ``(case, label file, mask file)``; files are read and checked as the metrics do."""
    results = {}
    for case, gt_path, pred_path in pairs:
        gt, pred = load_mask(gt_path), load_mask(pred_path)
        check_same_grid(gt, pred)
        results[case] = study_detection(gt.voxels, pred.voxels, pred.voxel_ml)
    return results


def detection_summary(studies: Sequence[StudyDetection]) -> dict:
    """Share of lesions hit per volume bin (and overall), and false-positive components per study."""
    by_bin = {name: [0, 0] for name in (*BIN_NAMES, "all")}
    for study in studies:
        for volume, hit in zip(study.lesion_ml, study.lesion_hit, strict=True):
            for name in (volume_bin(volume), "all"):
                by_bin[name][0] += int(hit)
                by_bin[name][1] += 1
    return {
        "studies": len(studies),
        "lesions_hit": {
            name: {"hit": hit, "lesions": total, "share": hit / total if total else float("nan")}
            for name, (hit, total) in by_bin.items()
        },
        "fp_components_per_study": float(np.mean([s.fp_components for s in studies])) if studies else float("nan"),
    }
