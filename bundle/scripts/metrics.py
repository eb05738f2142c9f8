# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Score predicted lesion masks against ground truth with the autoPET metrics (command line).

Usage, from ``bundle/``::

    python -m scripts.metrics --gt GT --pred PRED --out metrics.csv [--group-by prefix | --groups groups.csv]
    python -m scripts.metrics --gt GT --pred STEPS --out metrics.csv --interactive

GT and PRED are both NIfTI files or both folders of ``<case>.nii.gz`` / ``<case>.nii`` files matched by
name. With ``--interactive``, STEPS holds one folder per click step, ``step_0`` ... ``step_10`` (zero
padding allowed), each laid out like PRED. Writes the per-case CSV at ``--out``, ``<out>_summary.json``
beside it (plus ``<out>_steps.csv`` in interactive mode) and prints a table. Bad input exits with status 2
and a one-line message naming the file.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from scripts.atomic_io import write_csv, write_json
from scripts.autopet_metrics import (
    INTERACTIVE_STEPS,
    CaseMetrics,
    case_metrics,
    case_prefix,
    interactive_scores,
    nifti_voxel_volume_ml,
    non_binary_values,
    summarize,
)
from scripts.errors import InputDataError
from scripts.file_layout import NIFTI_SUFFIXES, strip_nifti_suffix
from scripts.volume_checks import spatial_shape

CASE_COLUMNS = ("dice", "fpv_ml", "fnv_ml")
INTERACTIVE_COLUMNS = ("auc_dice", "auc_fpv_ml", "auc_fnv_ml", "dice_last", "fpv_ml_last", "fnv_ml_last")
AFFINE_TOLERANCE_MM = 1e-3
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
    if not path.is_file():
        raise InputDataError(path, "file not found")
    try:
        image = nib.load(str(path))
        voxels = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises several types for broken files
        raise InputDataError(path, f"cannot be read as NIfTI ({error})") from error
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
    difference = float(np.abs(gt.affine - pred.affine).max())
    if not difference <= AFFINE_TOLERANCE_MM:
        raise InputDataError(
            pred.path,
            f"affine differs from the ground truth's ({gt.path}) by up to {difference:.4g} mm: not the same grid",
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


def sibling(out: Path, tag: str, suffix: str) -> Path:
    """``metrics.csv`` -> ``metrics_<tag><suffix>`` in the same folder."""
    return out.with_name(f"{out.stem}_{tag}{suffix}")


def json_ready(value: Any) -> Any:
    """Replace NaN by None (JSON null) throughout nested dicts and lists."""
    if isinstance(value, Mapping):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Plain-text table with right-aligned numbers; NaN shows as ``-``."""
    cells = [list(header)] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def aligned(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        return "  ".join([first] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)])

    lines = [aligned(row) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary_table(summary: Mapping[str, Any], columns: Sequence[str]) -> str:
    """Rows: all cases, each group, and the mean of group means when groups are present."""

    def line(name: str, cases: Any, metrics: Mapping[str, Any]) -> list[Any]:
        return [name, cases] + [metrics[c]["mean"] for c in columns]

    rows = [line("all cases", summary["cases"], summary["metrics"])]
    for name, group in summary.get("groups", {}).items():
        rows.append(line(f"group {name}", group["cases"], group["metrics"]))
    if "overall" in summary:
        rows.append(
            ["overall (mean of group means)", len(summary["groups"])] + [summary["overall"][c] for c in columns]
        )
    return format_table(["cohort", "n", *columns], rows)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.metrics",
        description="Score lesion masks with the autoPET metrics (Dice, FPV, FNV; 18-connectivity; ml).",
    )
    parser.add_argument("--gt", required=True, type=Path, help="ground-truth NIfTI file or folder")
    parser.add_argument(
        "--pred", required=True, type=Path, help="prediction file or folder (interactive: folder of step_0..step_10)"
    )
    parser.add_argument("--out", required=True, type=Path, help="per-case CSV to write (summary JSON beside it)")
    grouping = parser.add_mutually_exclusive_group()
    grouping.add_argument(
        "--group-by", choices=["prefix"], help="group cases by the case-name prefix before '_' (the tracer: fdg/psma)"
    )
    grouping.add_argument("--groups", type=Path, help="CSV with columns case,group (e.g. tracer x centre subsets)")
    parser.add_argument(
        "--interactive", action="store_true", help="score autoPET IV click steps 0..10: AUC and @last per metric"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary table")
    return parser


def _group_function(args: argparse.Namespace) -> Callable[[Mapping[str, Any]], str] | None:
    if args.group_by == "prefix":
        return lambda row: case_prefix(row["case"])
    if args.groups is not None:
        groups = read_groups(args.groups)

        def group_of(row: Mapping[str, Any]) -> str:
            if row["case"] not in groups:
                raise InputDataError(args.groups, f"no group for case '{row['case']}'")
            return groups[row["case"]]

        return group_of
    return None


def report_scores(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    out: Path,
    group_of: Callable[[Mapping[str, Any]], str] | None = None,
    context: Mapping[str, Any] | None = None,
    show_cases: bool = True,
    show_summary: bool = True,
) -> tuple[dict[str, Any], Path]:
    """Aggregate per-case rows as the challenge does, write ``out`` (CSV) and its ``*_summary.json``, print tables.

    Returns:
        (the summary, with ``context`` and the number of positive cases first; the summary file's path).
    """
    summary = summarize(rows, columns, group_of)
    summary = {**(context or {}), "positive_cases": summary["metrics"][columns[0]]["n"], **summary}
    write_csv(rows, out)
    summary_path = write_json(json_ready(summary), sibling(out, "summary", ".json"))
    if show_cases:
        header = ["case", *columns, "gt_ml"]
        print(format_table(header, [[r["case"], *(r[c] for c in columns), r["gt_ml"]] for r in rows]))
        print()
    if show_summary:
        print(summary_table(summary, columns))
    return summary, summary_path


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Score, write the CSV(s) and the summary, print the tables; returns the summary."""
    group_of = _group_function(args)
    if args.interactive:
        rows, step_rows = score_interactive(args.gt, args.pred)
        columns: Sequence[str] = INTERACTIVE_COLUMNS
        write_csv(step_rows, sibling(args.out, "steps", ".csv"))
    else:
        rows = score_cohort(match_cases(args.gt, args.pred))
        columns = CASE_COLUMNS
    if group_of is not None:
        rows = [{"case": row["case"], "group": group_of(row), **row} for row in rows]
    summary, summary_path = report_scores(
        rows,
        columns,
        args.out,
        (lambda row: row["group"]) if group_of else None,
        {"gt": str(args.gt), "pred": str(args.pred), "interactive": bool(args.interactive)},
        show_cases=not args.quiet,
    )
    print(f"\nper-case: {args.out}\nsummary:  {summary_path}")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with a one-line message for bad input)."""
    args = build_parser().parse_args(argv)
    try:
        extra = [] if args.interactive else unmatched_predictions(args.gt, args.pred)
        if extra:
            shown = ", ".join(extra[:5]) + (", ..." if len(extra) > 5 else "")
            print(f"note: {len(extra)} prediction(s) without ground truth are not scored: {shown}", file=sys.stderr)
        run(args)
    except InputDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
