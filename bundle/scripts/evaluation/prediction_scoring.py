# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Score the masks an inference run wrote against the label files of the same data items.

Used by ``configs/evaluate.json`` after its evaluator has written one ``<study>.nii.gz`` per item: every mask
is compared with its label file on the original grid, exactly as ``python -m scripts.evaluation.metrics`` would.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scripts.data.inference_inputs import study_name
from scripts.errors import InputDataError
from scripts.evaluation.autopet_metrics import case_prefix
from scripts.evaluation.mask_scoring import score_cohort
from scripts.evaluation.metrics import CASE_COLUMNS, report_scores

TRACERS = ("fdg", "psma")


def prediction_pairs(items: Sequence[Mapping[str, Any]], pred_dir: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """``(case, label file, mask file)`` for every labelled item; a missing mask is an error naming it."""
    pairs = []
    for item in items:
        if "label" not in item:
            continue
        image = item["image"]
        case = study_name(image[0] if isinstance(image, (list, tuple)) else image)
        mask = Path(pred_dir) / f"{case}.nii.gz"
        if not mask.is_file():
            raise InputDataError(mask, f"no prediction was written for study {case!r}")
        pairs.append((case, Path(item["label"]), mask))
    if not pairs:
        raise InputDataError(pred_dir, "none of the data items has a label to score against")
    return pairs


def score_predictions(
    items: Sequence[Mapping[str, Any]], pred_dir: str | os.PathLike, out_csv: str | os.PathLike, verbose: bool = True
) -> dict[str, Any]:
    """Write the per-case autoPET metrics CSV and a ``*_summary.json`` beside it; return the summary.

    When every case id starts with a tracer (``fdg_``/``psma_``), the summary also holds the per-tracer means and
    their mean, the challenge's "overall" figure.
    """
    rows = score_cohort(prediction_pairs(items, pred_dir))
    by_tracer = all(case_prefix(row["case"]) in TRACERS for row in rows)
    group_of = (lambda row: case_prefix(row["case"])) if by_tracer else None
    context = {"pred_dir": str(pred_dir)}
    summary, _ = report_scores(rows, CASE_COLUMNS, Path(out_csv), group_of, context, verbose, verbose)
    return summary
