# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Mask files scored with the autoPET metrics: reading, pairing by case name, same-grid check, cohort scoring.

Interactive (click-step) scoring reads one folder per step; the grid rule is :func:`scripts.data.grids.same_grid`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scripts.data.file_layout import NIFTI_SUFFIXES, strip_nifti_suffix
from scripts.data.grids import grid_difference, same_grid
from scripts.data.volume_checks import spatial_shape
from scripts.data.volumes import read_volume
from scripts.errors import InputDataError
from scripts.evaluation.autopet_metrics import (
    INTERACTIVE_STEPS,
    CaseMetrics,
    case_metrics,
    interactive_scores,
    nifti_voxel_volume_ml,
    non_binary_values,
)

STEP_FOLDER = re.compile(r"^step_?(\d+)$")


@dataclass(frozen=True)
class Mask:
    """A binary mask read from NIfTI with the geometry the metrics need."""

    path: Path
    voxels: np.ndarray
    affine: np.ndarray
    voxel_ml: float


def case_id(path: str | Path) -> str:
    """Case name of a NIfTI file: its name without ``.nii.gz`` / ``.nii``."""
    return strip_nifti_suffix(Path(path).name)


def load_mask(path: str | Path) -> Mask:
    """Read a lesion mask: 3D (trailing singleton axes allowed), values 0/1; voxel volume from the header pixdim.

    Raises:
        InputDataError: the file is missing, unreadable, not 3D or holds values other than 0 and 1.
    """
    path = Path(path)
    image = read_volume(path)
    voxels = image.array
    shape = spatial_shape(voxels, path)
    voxels = voxels.reshape(shape)
    bad = non_binary_values(voxels)
    if bad:
        raise InputDataError(path, "mask values other than 0/1: " + ", ".join(f"{v:g}" for v in bad))
    mask = voxels.view(bool) if voxels.dtype.itemsize == 1 and voxels.dtype.kind in "ui" else voxels != 0
    header = image.header
    pixdim = header["pixdim"] if "pixdim" in header else [1.0, *header.get_zooms()[:3]]
    return Mask(path=path, voxels=mask, affine=np.asarray(image.affine), voxel_ml=nifti_voxel_volume_ml(pixdim))


def check_same_grid(gt: Mask, pred: Mask) -> None:
    """Raise :class:`InputDataError` naming the prediction unless it lies on the ground truth's grid."""
    if gt.voxels.shape != pred.voxels.shape:
        raise InputDataError(
            pred.path, f"shape {pred.voxels.shape} differs from the ground truth's {gt.voxels.shape} ({gt.path})"
        )
    if not same_grid(gt.affine, gt.voxels.shape, pred.affine, pred.voxels.shape):
        difference = grid_difference(gt.affine, gt.voxels.shape, pred.affine, pred.voxels.shape)
        raise InputDataError(
            pred.path, f"affine differs from the ground truth's ({gt.path}): {difference}, not the same grid"
        )


def score_masks(gt: Mask, pred: Mask) -> CaseMetrics:
    """Metrics of one prediction; the voxel volume comes from the prediction's header, as in the challenge."""
    check_same_grid(gt, pred)
    return case_metrics(gt.voxels, pred.voxels, pred.voxel_ml)


def nifti_files(folder: Path) -> dict[str, Path]:
    """Map case name -> NIfTI file of a folder; raise on a case present as both ``.nii`` and ``.nii.gz``."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name.endswith(NIFTI_SUFFIXES) and not path.name.startswith("."):
            name = case_id(path)
            if name in found:
                raise InputDataError(path, f"case '{name}' is present twice ({found[name].name} and {path.name})")
            found[name] = path
    return found


def find_prediction(folder: Path, case: str, gt_path: Path) -> Path:
    """The prediction file of ``case`` in ``folder``, or a clear error naming the missing case."""
    candidates = [folder / f"{case}{suffix}" for suffix in NIFTI_SUFFIXES]
    present = [path for path in candidates if path.is_file()]
    if not present:
        raise InputDataError(
            candidates[0],
            f"no prediction for ground-truth case '{case}' ({gt_path}); expected {case}.nii.gz or {case}.nii",
        )
    if len(present) > 1:
        raise InputDataError(present[1], f"case '{case}' is present twice ({present[0].name} and {present[1].name})")
    return present[0]


def match_cases(gt: Path, pred: Path) -> list[tuple[str, Path, Path]]:
    """Pair ground truth and prediction files: (case, gt file, prediction file), sorted by case.

    Raises:
        InputDataError: a path is missing, one is a file and the other a folder, the ground-truth folder
            has no NIfTI file, or a ground-truth case has no prediction.
    """
    for path in (gt, pred):
        if not path.exists():
            raise InputDataError(path, "does not exist")
    if gt.is_file() != pred.is_file():
        raise InputDataError(pred, f"--gt and --pred must both be files or both be folders ({gt} vs {pred})")
    if gt.is_file():
        return [(case_id(gt), gt, pred)]
    gt_files = nifti_files(gt)
    if not gt_files:
        raise InputDataError(gt, "no .nii.gz or .nii ground-truth files in this folder")
    return [(case, gt_path, find_prediction(pred, case, gt_path)) for case, gt_path in gt_files.items()]


def unmatched_predictions(gt: Path, pred: Path) -> list[str]:
    """Prediction cases without ground truth (reported, not scored)."""
    if not (gt.is_dir() and pred.is_dir()):
        return []
    return sorted(set(nifti_files(pred)) - set(nifti_files(gt)))


def step_folders(pred: Path) -> list[Path]:
    """The click-step folders ``step_0`` .. ``step_10`` of an interactive prediction folder, in step order.

    Raises:
        InputDataError: ``pred`` is not a folder, or a step is missing, duplicated or beyond 10.
    """
    if not pred.is_dir():
        raise InputDataError(pred, "--interactive needs a folder holding step_0 ... step_10")
    steps: dict[int, Path] = {}
    for path in sorted(pred.iterdir()):
        match = STEP_FOLDER.match(path.name)
        if path.is_dir() and match:
            step = int(match.group(1))
            if step in steps:
                raise InputDataError(path, f"step {step} is present twice ({steps[step].name} and {path.name})")
            steps[step] = path
    expected = set(range(INTERACTIVE_STEPS))
    if set(steps) != expected:
        missing = sorted(expected - set(steps))
        extra = sorted(set(steps) - expected)
        problem = f"missing step folders {missing}" if missing else f"unexpected step folders {extra}"
        raise InputDataError(pred, f"{problem}; autoPET IV needs step_0 ... step_{INTERACTIVE_STEPS - 1}")
    return [steps[step] for step in range(INTERACTIVE_STEPS)]


def read_groups(path: Path) -> dict[str, str]:
    """Read a ``case,group`` CSV (e.g. tracer x centre subsets)."""
    if not path.is_file():
        raise InputDataError(path, "file not found")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"case", "group"} <= set(reader.fieldnames):
            raise InputDataError(path, f"needs the columns 'case' and 'group', found {reader.fieldnames}")
        return {row["case"]: row["group"] for row in reader}


def score_cohort(pairs: Sequence[tuple[str, Path, Path]]) -> list[dict[str, Any]]:
    """One CSV row per case: case name and every :class:`CaseMetrics` field."""
    rows = []
    for case, gt_path, pred_path in pairs:
        metrics = score_masks(load_mask(gt_path), load_mask(pred_path))
        rows.append({"case": case, **metrics.as_row()})
    return rows


def score_interactive(gt: Path, pred: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Score a folder of per-step predictions.

    Returns:
        (one row per case with the AUC and @last figures, one row per case and step).
    """
    folders = step_folders(pred)
    if not gt.exists():
        raise InputDataError(gt, "does not exist")
    cases = nifti_files(gt) if gt.is_dir() else {case_id(gt): gt}
    if not cases:
        raise InputDataError(gt, "no .nii.gz or .nii ground-truth files in this folder")
    case_rows, step_rows = [], []
    for case, gt_path in cases.items():
        truth = load_mask(gt_path)
        per_step = []
        for step, folder in enumerate(folders):
            metrics = score_masks(truth, load_mask(find_prediction(folder, case, gt_path)))
            per_step.append(metrics)
            step_rows.append({"case": case, "step": step, **metrics.as_row()})
        case_rows.append({"case": case, **interactive_scores(per_step), "gt_ml": per_step[0].gt_ml})
    return case_rows, step_rows
