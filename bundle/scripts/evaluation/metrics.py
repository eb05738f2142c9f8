# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Score predicted lesion masks against ground truth with the autoPET metrics (command line).

Usage, from ``bundle/``::

    python -m scripts.evaluation.metrics --gt GT --pred PRED --out metrics.csv [--group-by prefix | --groups groups.csv]
    python -m scripts.evaluation.metrics --gt GT --pred STEPS --out metrics.csv --interactive

GT and PRED are both NIfTI files or both folders of ``<case>.nii.gz`` / ``<case>.nii`` files matched by
name. With ``--interactive``, STEPS holds one folder per click step, ``step_0`` ... ``step_10`` (zero
padding allowed), each laid out like PRED. Writes the per-case CSV at ``--out``, ``<out>_summary.json``
beside it (plus ``<out>_steps.csv`` in interactive mode) and prints a table. Bad input exits with status 2
and a one-line message naming the file.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from scripts.atomic_io import write_csv, write_json
from scripts.errors import InputDataError, say
from scripts.evaluation.autopet_metrics import case_prefix, summarize
from scripts.evaluation.mask_scoring import (
    match_cases,
    read_groups,
    score_cohort,
    score_interactive,
    unmatched_predictions,
)

CASE_COLUMNS = ("dice", "fpv_ml", "fnv_ml")
INTERACTIVE_COLUMNS = ("auc_dice", "auc_fpv_ml", "auc_fnv_ml", "dice_last", "fpv_ml_last", "fnv_ml_last")


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
        prog="python -m scripts.evaluation.metrics",
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
        say(format_table(header, [[r["case"], *(r[c] for c in columns), r["gt_ml"]] for r in rows]))
        say("")
    if show_summary:
        say(summary_table(summary, columns))
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
    say(f"\nper-case: {args.out}\nsummary:  {summary_path}")
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
