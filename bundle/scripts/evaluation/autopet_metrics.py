# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The autoPET challenge metrics (Dice, false-positive and false-negative volume) and their aggregation.

Longer than 300 lines because it is the one complete transcription of the challenge's definitions, kept in one
file so that it can be read against the challenge's evaluation code and docs/metrics.md side by side.

Definitions follow the autoPET IV evaluation (see ``docs/metrics.md``):

* connected components use 18-connectivity (faces and edges, not corners);
* Dice and FNV are NaN for a negative study (empty ground truth), FPV is defined for every study;
* a predicted component that touches the ground truth by one voxel is not a false positive, and a
  lesion touched by one predicted voxel is not a false negative;
* volumes are in ml: voxel count times the voxel volume in ml;
* cohort figures are NaN-skipping means (Dice and FNV over positive studies, FPV over all), and the
  challenge's "Overall" is the mean of the subset (tracer or tracer x centre) means;
* the interactive AUC integrates a metric over the click steps 0..10 with the trapezoid rule.

Everything here is pure numpy/scipy on boolean masks; file handling lives in ``scripts.evaluation.metrics``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

CONNECTIVITY_18 = ndimage.generate_binary_structure(3, 2)
"""3x3x3 structuring element of 18-connectivity: face and edge neighbours, no corner neighbours."""

INTERACTIVE_STEPS = 11
"""autoPET IV click steps: step k (k = 0..10) sees the first k tumour and k background clicks."""

INTERACTIVE_METRICS = ("dice", "fpv_ml", "fnv_ml")
"""Per-step metrics that get an AUC and an @last value."""

MAX_BOXES = 4096
"""Stop cutting a mask into boxes beyond this many (a noise-like mask would otherwise cost Python overhead)."""

Box = tuple[slice, slice, slice]


@dataclass(frozen=True)
class CaseMetrics:
    """Metrics of one study; ``dice`` and ``fnv_ml`` are NaN when the ground truth is empty.

    Attributes:
        dice: 2|GT and pred| / (|GT| + |pred|), NaN for a negative study.
        fpv_ml: volume of predicted components with no voxel in the ground truth.
        fnv_ml: volume of ground-truth lesions with no predicted voxel, NaN for a negative study.
        gt_ml: ground-truth volume.
        pred_ml: predicted volume.
        gt_lesions: number of ground-truth components (18-connectivity).
        pred_components: number of predicted components (18-connectivity).
        fp_components: predicted components counted as false positives.
        fn_lesions: ground-truth lesions counted as missed.
        voxel_ml: the voxel volume the volumes were computed with.
    """

    dice: float
    fpv_ml: float
    fnv_ml: float
    gt_ml: float
    pred_ml: float
    gt_lesions: int
    pred_components: int
    fp_components: int
    fn_lesions: int
    voxel_ml: float

    def as_row(self) -> dict[str, float | int]:
        """Return the metrics as a flat dict (CSV row)."""
        return asdict(self)


def nifti_voxel_volume_ml(pixdim: Sequence[float]) -> float:
    """Voxel volume in ml from a NIfTI ``pixdim`` array, as the challenge does: pixdim[1]*pixdim[2]*pixdim[3]/1000."""
    if len(pixdim) < 4:
        raise ValueError(f"a NIfTI pixdim has 8 entries, got {len(pixdim)}")
    return abs(float(pixdim[1]) * float(pixdim[2]) * float(pixdim[3])) / 1000.0


def affine_voxel_volume_ml(affine: np.ndarray) -> float:
    """Voxel volume in ml of a grid from its 4x4 voxel-to-world affine (|det| of the 3x3 part, mm^3 / 1000)."""
    matrix = np.asarray(affine, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise ValueError(f"expected a 4x4 affine, got shape {matrix.shape}")
    return abs(float(np.linalg.det(matrix[:3, :3]))) / 1000.0


def non_binary_values(array: np.ndarray, limit: int = 5) -> list[float]:
    """Up to ``limit`` distinct values of ``array`` other than 0 and 1 (empty list for a valid mask).

    Two reductions (min, max) settle the common case; ``np.unique`` runs only on the offending voxels.
    """
    values = np.asarray(array)
    if values.dtype == bool or values.size == 0:
        return []
    low, high = values.min(), values.max()
    in_range = bool(low >= 0 and high <= 1)
    if in_range and (values.dtype.kind in "ui" or np.count_nonzero(values) == np.count_nonzero(values == 1)):
        return []
    offending = values[(values != 0) & (values != 1)]
    return [float(v) for v in np.unique(offending)[:limit]]


def _as_mask(array: np.ndarray, name: str) -> np.ndarray:
    """Return ``array`` as a 3D boolean mask (a view for 1-byte integers); raise unless it is 3D and 0/1."""
    mask = np.asarray(array)
    if mask.ndim != 3:
        raise ValueError(f"{name} must be a 3D mask, got shape {mask.shape}")
    if mask.dtype == bool:
        return mask
    bad = non_binary_values(mask)
    if bad:
        raise ValueError(f"{name} must hold only 0 and 1, found {', '.join(f'{v:g}' for v in bad)}")
    return mask.view(bool) if mask.dtype.itemsize == 1 and mask.dtype.kind in "ui" else mask != 0


def _runs(occupied: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges of the consecutive True runs of a 1D boolean array."""
    index = np.flatnonzero(occupied)
    if index.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(index) > 1)
    starts = index[np.r_[0, breaks + 1]]
    stops = index[np.r_[breaks, index.size - 1]] + 1
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def foreground_boxes(mask: np.ndarray, max_boxes: int | None = None) -> list[Box]:
    """Split the foreground of a 3D mask into disjoint boxes, each holding whole 18-connected components.

    A component cannot cross a plane of the box that holds no foreground voxel (18- and 26-neighbours
    differ by at most one index per axis), so the box is trimmed to its foreground and cut at every empty
    plane, recursively. Labelling the boxes instead of the volume costs time in proportion to the lesions,
    not to the whole-body field of view.

    Args:
        mask: 3D boolean array.
        max_boxes: once this many boxes exist, the remaining ones are kept uncut (still correct, just larger);
            default :data:`MAX_BOXES`.

    Returns:
        Tuples of slices; every foreground voxel lies in exactly one box.
    """
    mask = _as_mask(mask, "mask")
    limit = MAX_BOXES if max_boxes is None else max_boxes
    boxes: list[Box] = []
    pending: list[tuple[int, ...]] = [(0, mask.shape[0], 0, mask.shape[1], 0, mask.shape[2])]
    while pending:
        x0, x1, y0, y1, z0, z1 = pending.pop()
        sub = mask[x0:x1, y0:y1, z0:z1]
        plane_xy = sub.any(axis=2)
        runs = [_runs(plane_xy.any(axis=1)), _runs(plane_xy.any(axis=0)), _runs(sub.any(axis=(0, 1)))]
        if not runs[0]:
            continue
        origin = (x0, y0, z0)
        bounds = [(origin[a] + r[0][0], origin[a] + r[-1][1]) for a, r in enumerate(runs)]
        split_axis = max(range(3), key=lambda a: len(runs[a]))
        pieces = len(runs[split_axis])
        if pieces == 1 or len(boxes) + len(pending) + pieces > limit:
            boxes.append(tuple(slice(lo, hi) for lo, hi in bounds))  # type: ignore[arg-type]
            continue
        for start, stop in runs[split_axis]:
            piece = list(bounds)
            piece[split_axis] = (origin[split_axis] + start, origin[split_axis] + stop)
            pending.append(tuple(v for lo_hi in piece for v in lo_hi))
    return boxes


def _unmatched_voxels(components_of: np.ndarray, other: np.ndarray) -> tuple[int, int, int]:
    """Label ``components_of`` (18-conn) and total the components with no voxel in ``other``.

    Returns:
        (voxels in unmatched components, number of components, number of unmatched components).
    """
    labels, count = ndimage.label(components_of, structure=CONNECTIVITY_18)
    if count == 0:
        return 0, 0, 0
    sizes = np.bincount(labels[components_of], minlength=count + 1)
    matched = np.zeros(count + 1, dtype=bool)
    matched[labels[components_of & other]] = True
    unmatched = ~matched
    unmatched[0] = False
    return int(sizes[unmatched].sum()), int(count), int(np.count_nonzero(unmatched))


def _check_pair(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gt_mask, pred_mask = _as_mask(gt, "gt"), _as_mask(pred, "pred")
    if gt_mask.shape != pred_mask.shape:
        raise ValueError(f"gt and pred differ in shape: {gt_mask.shape} vs {pred_mask.shape}")
    return gt_mask, pred_mask


def dice_score(gt: np.ndarray, pred: np.ndarray) -> float:
    """Dice 2|GT and pred| / (|GT| + |pred|) without smoothing; NaN when the ground truth is empty."""
    gt_mask, pred_mask = _check_pair(gt, pred)
    gt_voxels = int(np.count_nonzero(gt_mask))
    if gt_voxels == 0:
        return math.nan
    overlap = int(np.count_nonzero(gt_mask & pred_mask))
    return 2.0 * overlap / (gt_voxels + int(np.count_nonzero(pred_mask)))


def false_positive_volume(gt: np.ndarray, pred: np.ndarray, voxel_ml: float) -> float:
    """Volume (ml) of the predicted 18-connected components that share no voxel with the ground truth."""
    gt_mask, pred_mask = _check_pair(gt, pred)
    voxels = sum(_unmatched_voxels(pred_mask[box], gt_mask[box])[0] for box in foreground_boxes(pred_mask))
    return voxels * float(voxel_ml)


def false_negative_volume(gt: np.ndarray, pred: np.ndarray, voxel_ml: float) -> float:
    """Volume (ml) of the ground-truth 18-connected lesions with no predicted voxel; NaN for an empty ground truth."""
    gt_mask, pred_mask = _check_pair(gt, pred)
    boxes = foreground_boxes(gt_mask)
    if not boxes:
        return math.nan
    voxels = sum(_unmatched_voxels(gt_mask[box], pred_mask[box])[0] for box in boxes)
    return voxels * float(voxel_ml)


def case_metrics(gt: np.ndarray, pred: np.ndarray, voxel_ml: float) -> CaseMetrics:
    """All autoPET metrics of one study in one pass.

    Args:
        gt: 3D ground-truth mask (bool, or 0/1 numbers).
        pred: 3D predicted mask on the same grid.
        voxel_ml: voxel volume in ml (see :func:`nifti_voxel_volume_ml`, :func:`affine_voxel_volume_ml`).

    Returns:
        The study's :class:`CaseMetrics`.
    """
    gt_mask, pred_mask = _check_pair(gt, pred)
    gt_voxels = pred_voxels = overlap = fp_voxels = fn_voxels = 0
    gt_lesions = pred_components = fp_components = fn_lesions = 0
    # Every GT and every predicted component lies inside one component of the union, hence inside one box.
    for box in foreground_boxes(gt_mask | pred_mask):
        gt_box, pred_box = gt_mask[box], pred_mask[box]
        gt_voxels += int(np.count_nonzero(gt_box))
        pred_voxels += int(np.count_nonzero(pred_box))
        overlap += int(np.count_nonzero(gt_box & pred_box))
        missed, lesions, missed_lesions = _unmatched_voxels(gt_box, pred_box)
        fn_voxels, gt_lesions, fn_lesions = fn_voxels + missed, gt_lesions + lesions, fn_lesions + missed_lesions
        spurious, components, spurious_components = _unmatched_voxels(pred_box, gt_box)
        fp_voxels, pred_components = fp_voxels + spurious, pred_components + components
        fp_components += spurious_components
    positive = gt_voxels > 0
    voxel_ml = float(voxel_ml)
    return CaseMetrics(
        dice=2.0 * overlap / (gt_voxels + pred_voxels) if positive else math.nan,
        fpv_ml=fp_voxels * voxel_ml,
        fnv_ml=fn_voxels * voxel_ml if positive else math.nan,
        gt_ml=gt_voxels * voxel_ml,
        pred_ml=pred_voxels * voxel_ml,
        gt_lesions=gt_lesions,
        pred_components=pred_components,
        fp_components=fp_components,
        fn_lesions=fn_lesions,
        voxel_ml=voxel_ml,
    )


def interactive_auc(values: Sequence[float]) -> float:
    """Area under a metric's curve over the autoPET IV click steps 0..10 (trapezoid rule, unit spacing).

    A constant value d gives 10 * d; NaN anywhere (a negative study's Dice or FNV) gives NaN.

    Args:
        values: the metric at steps 0, 1, ..., 10 (exactly :data:`INTERACTIVE_STEPS` values).
    """
    curve = np.asarray(values, dtype=np.float64)
    if curve.shape != (INTERACTIVE_STEPS,):
        raise ValueError(f"expected the metric at {INTERACTIVE_STEPS} click steps (0..10), got shape {curve.shape}")
    return float(np.trapezoid(curve, x=np.arange(INTERACTIVE_STEPS)))


def interactive_scores(steps: Sequence[CaseMetrics]) -> dict[str, float]:
    """Interactive figures of one study from its per-step metrics (steps 0..10 in order).

    Returns:
        ``auc_<m>`` (area over the steps) and ``<m>_last`` (value at step 10) for m in dice, fpv_ml, fnv_ml.
    """
    scores: dict[str, float] = {}
    for name in INTERACTIVE_METRICS:
        scores[f"auc_{name}"] = interactive_auc([float(getattr(step, name)) for step in steps])
    for name in INTERACTIVE_METRICS:
        scores[f"{name}_last"] = float(getattr(steps[-1], name))
    return scores


def nan_mean(values: Iterable[float]) -> float:
    """Mean of the non-NaN values (NaN when there are none), like ``pandas.Series.mean``."""
    numbers = np.asarray([float(v) for v in values], dtype=np.float64)
    kept = numbers[~np.isnan(numbers)]
    return float(kept.mean()) if kept.size else math.nan


def case_prefix(case_id: str) -> str:
    """Group of a case from its id prefix, e.g. ``"psma_95b8..._2018-04-16"`` -> ``"psma"`` (the tracer)."""
    return case_id.split("_", 1)[0].lower()


def _column_means(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, dict[str, float | int]]:
    means: dict[str, dict[str, float | int]] = {}
    for column in columns:
        values = [float(row[column]) for row in rows]
        means[column] = {"mean": nan_mean(values), "n": int(sum(not math.isnan(v) for v in values))}
    return means


def summarize(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    group_of: Callable[[Mapping[str, Any]], str] | None = None,
) -> dict[str, Any]:
    """Cohort figures the way the challenge aggregates them.

    Every column is averaged over its non-NaN values: Dice and FNV (NaN for negative studies) over the
    positive studies, FPV over all. With ``group_of``, each group is averaged separately and ``overall``
    is the mean of the group means (the leaderboard's "Overall", where groups are tracer x centre
    subsets); a group mean that is NaN (no positive study in it) is left out of that mean.

    Args:
        rows: one mapping per study holding at least ``columns``.
        columns: the metric columns to average.
        group_of: optional function giving a row's group name.

    Returns:
        ``{"cases": n, "metrics": {column: {"mean", "n"}}}`` plus, with groups,
        ``"groups": {name: {"cases", "metrics"}}`` and ``"overall": {column: mean of group means}``.
    """
    summary: dict[str, Any] = {"cases": len(rows), "metrics": _column_means(rows, columns)}
    if group_of is None:
        return summary
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(group_of(row), []).append(row)
    summary["groups"] = {
        name: {"cases": len(members), "metrics": _column_means(members, columns)}
        for name, members in sorted(grouped.items())
    }
    summary["overall"] = {
        column: nan_mean(group["metrics"][column]["mean"] for group in summary["groups"].values()) for column in columns
    }
    return summary
