# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Models and the SUV-threshold baseline side by side on one labelled test set: autoPET metrics and detection.

Each result is ``{"name", "checkpoint", "metrics", "detection"}``: the autoPET metrics summary (as
``scripts.evaluation.prediction_scoring`` writes it) and the lesion-wise detection of the masks in one folder.
:func:`print_comparison` prints both tables and returns every printed number, for a summary file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scripts.data.inference_inputs import find_inference_items
from scripts.evaluation.baseline import segment_folder
from scripts.evaluation.lesion_detection import BIN_NAMES, detect_files, detection_summary
from scripts.evaluation.metrics import format_table
from scripts.evaluation.prediction_scoring import prediction_pairs, score_predictions

BASELINE = "SUV >= 4 threshold"


def test_items(test_set: Path) -> list[dict]:
    """The labelled studies of a prepared dataset (``datalist_all.json``)."""
    return find_inference_items(Path(test_set) / "datalist_all.json", datalist_key="training")


def masks_result(
    name: str, test_set: Path, pred_dir: Path, checkpoint: Path | None = None, metrics: dict | None = None
) -> dict[str, Any]:
    """Metrics and detection of the masks in ``pred_dir``.

    ``metrics``: the summary ``evaluate.json`` already wrote for these masks; when absent they are scored here
    (``pred_dir/metrics.csv`` and its summary).
    """
    items = test_items(test_set)
    if metrics is None:
        metrics = score_predictions(items, pred_dir, Path(pred_dir) / "metrics.csv", verbose=False)
    detection = detection_summary(list(detect_files(prediction_pairs(items, pred_dir)).values()))
    stored = None if checkpoint is None else str(checkpoint)
    return {"name": name, "checkpoint": stored, "metrics": metrics, "detection": detection}


def baseline_result(test_set: Path, out_dir: Path) -> dict[str, Any]:
    """The SUV >= 4 threshold on every PET of ``test_set/imagesTr``, scored."""
    segment_folder(Path(test_set) / "imagesTr", Path(out_dir))
    return masks_result(BASELINE, test_set, out_dir)


def mean_of(result: dict[str, Any], column: str) -> float:
    """The mean of one metric column (NaN where no study had it)."""
    value = result["metrics"]["metrics"][column]["mean"]
    return math.nan if value is None else float(value)


def print_comparison(results: Sequence[dict[str, Any]], baseline_fpv: float) -> dict[str, Any]:
    """Print the autoPET table and the detection table; return the printed numbers by result name."""
    header = ["method", "studies", "dice (positive)", "fpv_ml", "fnv_ml", "fpv / baseline"]
    rows, printed = [], {}
    for result in results:
        dice, fpv, fnv = (mean_of(result, c) for c in ("dice", "fpv_ml", "fnv_ml"))
        share = fpv / baseline_fpv if baseline_fpv > 0 else math.nan
        rows.append([result["name"], result["metrics"]["cases"], dice, fpv, fnv, share])
        printed[result["name"]] = {"dice": dice, "fpv_ml": fpv, "fnv_ml": fnv, "fpv_share_of_baseline": share}
    print(format_table(header, rows))
    print("\nlesion-wise detection: share of ground-truth lesions hit (hit/lesions), false-positive components")
    header = ["method", *BIN_NAMES, "all", "FP components / study"]
    rows = []
    for result in results:
        hits = result["detection"]["lesions_hit"]
        cells = [f"{hits[b]['share']:.2f} ({hits[b]['hit']}/{hits[b]['lesions']})" for b in (*BIN_NAMES, "all")]
        rows.append([result["name"], *cells, result["detection"]["fp_components_per_study"]])
        printed[result["name"]]["detection"] = result["detection"]
    print(format_table(header, rows))
    return printed
