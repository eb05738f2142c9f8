# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The ablation's tables: one row per run, then per arm the mean ± standard deviation over seeds.

Files under ``--out``: ``ablation_runs.csv`` (arm x seed), ``ablation.csv`` (per arm) and ``ablation.md`` (the
per-arm table with the command line and the budget). Each run's figures are the autoPET cohort means of its
``metrics.csv``: Dice and FNV over the test studies with lesions, FPV over all of them.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scripts.atomic_io import write_csv, write_text
from scripts.evaluation.autopet_metrics import summarize
from scripts.evaluation.metrics import CASE_COLUMNS

if TYPE_CHECKING:
    from scripts.ablation.protocol import Arm, Protocol

METRICS = CASE_COLUMNS  # dice, fpv_ml, fnv_ml
RUN_COLUMNS = ("arm", "variant", "ssl", "seed", *METRICS, "cases")
SUMMARY_COLUMNS = ("arm", "variant", "ssl", *(f"{m}_{s}" for m in METRICS for s in ("mean", "std")), "seeds")
RUNS_CSV, SUMMARY_CSV, SUMMARY_MD = "ablation_runs.csv", "ablation.csv", "ablation.md"
HEADINGS = {"dice": "Dice", "fpv_ml": "FPV (ml)", "fnv_ml": "FNV (ml)"}
DECIMALS = {"dice": 3, "fpv_ml": 2, "fnv_ml": 2}


def run_row(arm: Arm, seed: int, metrics_csv: Path) -> dict[str, Any]:
    """One run's row, from the per-case ``metrics.csv`` its evaluation wrote."""
    with open(metrics_csv, newline="") as handle:
        cases = [{column: float(row[column]) for column in METRICS} for row in csv.DictReader(handle)]
    summary = summarize(cases, METRICS)
    means = {column: summary["metrics"][column]["mean"] for column in METRICS}
    return {"arm": arm.name, "variant": arm.variant, "ssl": arm.ssl, "seed": seed, **means, "cases": len(cases)}


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1); the deviation is NaN for fewer than two values."""
    numbers = np.asarray(values, dtype=np.float64)
    if numbers.size == 0:
        return math.nan, math.nan
    std = float(numbers.std(ddof=1)) if numbers.size > 1 else math.nan
    return float(numbers.mean()), std


def summarize_arms(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per arm, in order of first appearance: the mean and standard deviation of each metric over its seeds."""
    by_arm: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_arm.setdefault(row["arm"], []).append(row)
    summary = []
    for arm, runs in by_arm.items():
        line: dict[str, Any] = {"arm": arm, "variant": runs[0]["variant"], "ssl": runs[0]["ssl"]}
        for metric in METRICS:
            line[f"{metric}_mean"], line[f"{metric}_std"] = mean_and_std([float(run[metric]) for run in runs])
        line["seeds"] = len(runs)
        summary.append(line)
    return summary


def mean_std_text(mean: float, std: float, decimals: int) -> str:
    """``0.123 ± 0.045``; the mean alone without a deviation; ``-`` without a mean."""
    if math.isnan(mean):
        return "-"
    return f"{mean:.{decimals}f}" + ("" if math.isnan(std) else f" ± {std:.{decimals}f}")


def markdown_table(summary: Sequence[Mapping[str, Any]]) -> str:
    """The per-arm table in Markdown."""
    lines = [
        "| arm | xLSTM | MAE pretraining | " + " | ".join(HEADINGS[m] for m in METRICS) + " | seeds |",
        "| --- | --- | --- | " + " | ".join("---:" for _ in METRICS) + " | ---: |",
    ]
    for line in summary:
        cells = [mean_std_text(line[f"{m}_mean"], line[f"{m}_std"], DECIMALS[m]) for m in METRICS]
        ssl = "yes" if line["ssl"] else "no (scratch)"
        lines.append(f"| {line['arm']} | {line['variant']} | {ssl} | " + " | ".join(cells) + f" | {line['seeds']} |")
    return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _schedule(epochs: int, iterations: int, batch_size: int) -> str:
    patches = epochs * iterations * batch_size
    return f"{_count(epochs, 'epoch')} x {_count(iterations, 'iteration')} x batch {batch_size} = {patches} patches"


def _budget_lines(protocol: Protocol, seconds: Mapping[str, float]) -> list[str]:
    budget = protocol.budget
    pretrain_data = protocol.pretrain_datalist or "every study of the fold: its training and test images, no labels"
    rows = [
        ("data", f"`{protocol.data.folder}`, fold {protocol.data.fold}"),
        ("test set", f"the fold's {len(protocol.data.test)} validation studies, the same for every run"),
        ("fine-tuning cases", f"{len(protocol.labelled)}: " + ", ".join(protocol.record()["labelled_cases"])),
        (
            "fine-tuning (train.json)",
            _schedule(budget.epochs, budget.iterations_per_epoch, budget.batch_size)
            + f", learning rate {budget.learning_rate}, no validation, the final epoch's checkpoint scored",
        ),
        (
            "MAE pretraining (pretrain.json, +ssl arms)",
            _schedule(budget.pretrain_epochs, budget.pretrain_iterations_per_epoch, budget.batch_size)
            + f", warm-up {_count(budget.pretrain_warmup_epochs, 'epoch')}, once per variant and seed",
        ),
        ("pretraining data", str(pretrain_data)),
        ("patch (roi_size)", " x ".join(map(str, budget.roi_size))),
        (
            "patch centres (lesion : anywhere : hot background)",
            " : ".join(f"{w:g}" for w in (*budget.pos_neg_ratio, budget.hot_patch_weight)),
        ),
        ("voxel size (pixdim, mm)", " x ".join(map(str, budget.pixdim))),
        ("features / strides", f"{budget.features} / {budget.strides}"),
        ("evaluation", f"sliding window, overlap {budget.sw_overlap}, flip TTA axes {budget.tta_axes}"),
        ("seeds", " ".join(map(str, protocol.seeds))),
        ("compute recorded", ", ".join(f"{stage} {value / 60:.1f} min" for stage, value in seconds.items())),
    ]
    return ["| setting | value |", "| --- | --- |"] + [f"| {name} | {value} |" for name, value in rows]


def markdown_report(protocol: Protocol, summary: Sequence[Mapping[str, Any]], seconds: Mapping[str, float]) -> str:
    """``ablation.md``: the table, how to read it, the exact command and the budget."""
    return "\n".join(
        [
            f"# Ablation: xLSTM placement x MAE pretraining (fold {protocol.data.fold}, "
            f"{len(protocol.labelled)} labelled cases)",
            "",
            markdown_table(summary),
            "",
            "Mean ± sample standard deviation (n - 1) over seeds. Each run is scored on the same test studies with "
            "the autoPET metrics: Dice and FNV averaged over the studies with lesions, FPV over all of them.",
            "",
            "## Command",
            "",
            "```",
            f"cd bundle && {protocol.command}",
            "```",
            "",
            "## Protocol and budget (the same for every arm)",
            "",
            *_budget_lines(protocol, seconds),
            "",
        ]
    )


def write_reports(protocol: Protocol, rows: Sequence[Mapping[str, Any]], seconds: Mapping[str, float]) -> None:
    """Write ``ablation_runs.csv``, ``ablation.csv`` and ``ablation.md`` under ``--out`` (atomically)."""
    summary = summarize_arms(rows)
    write_csv([{column: row[column] for column in RUN_COLUMNS} for row in rows], protocol.out / RUNS_CSV, RUN_COLUMNS)
    write_csv(summary, protocol.out / SUMMARY_CSV, SUMMARY_COLUMNS)
    write_text(markdown_report(protocol, summary, seconds), protocol.out / SUMMARY_MD)
