# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Print one plain line per validation: Dice, false-positive and false-negative volume, and the best Dice so far."""

from __future__ import annotations

import math
from collections.abc import Mapping

from ignite.engine import Engine, Events

DEFAULT_METRICS = {"Dice": "val_mean_dice", "FPV": "val_autopet_fpv_ml", "FNV": "val_autopet_fnv_ml"}
MILLILITRE_METRICS = ("FPV", "FNV")


def validation_line(epoch: int, metrics: Mapping[str, float], names: Mapping[str, str], best: tuple | None) -> str:
    """``"validation at epoch 10: Dice 0.5120 | FPV 12.30 ml | FNV 4.50 ml | best Dice 0.6000 (epoch 8)"``."""
    parts = []
    for shown, key in names.items():
        if key in metrics:
            value = float(metrics[key])
            parts.append(f"{shown} {value:.2f} ml" if shown in MILLILITRE_METRICS else f"{shown} {value:.4f}")
    if best is not None and best[1] > 0 and not math.isnan(float(best[0])):
        parts.append(f"best Dice {float(best[0]):.4f} (epoch {best[1]})")
    return f"validation at epoch {epoch}: " + " | ".join(parts)


class ValidationReport:
    """Attach to a validation evaluator: after each of its runs, print :func:`validation_line`.

    Args:
        metrics: label printed -> metric name in ``engine.state.metrics``; the three autoPET figures by default.
    """

    def __init__(self, metrics: Mapping[str, str] | None = None) -> None:
        self.metrics = dict(DEFAULT_METRICS if metrics is None else metrics)

    def attach(self, engine: Engine) -> None:
        """Print after every validation epoch of ``engine`` (its metrics are computed by then)."""
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        """Print the line for the validation that just finished."""
        state = engine.state
        best = (getattr(state, "best_metric", math.nan), getattr(state, "best_metric_epoch", -1))
        print(validation_line(state.epoch, state.metrics, self.metrics, best), flush=True)
