# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Training curves read back from a run's TensorBoard logs: mean loss per epoch and the validation metric.

``train.json`` logs ``train_loss`` per iteration and the validation metrics per validation (step = epoch);
:func:`read_curves` turns them into ``{"loss": [[epoch, mean loss]], "validation": [[epoch, value]]}``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from scripts.errors import InputDataError


def read_curves(
    log_dir: str | os.PathLike,
    iterations_per_epoch: int,
    loss_tag: str = "train_loss",
    metric_tag: str = "val_mean_dice",
) -> dict[str, list[list[float]]]:
    """Per-epoch mean of ``loss_tag`` and every ``metric_tag`` point from the event files in ``log_dir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if iterations_per_epoch < 1:
        raise ValueError(f"iterations_per_epoch must be at least 1, got {iterations_per_epoch}")
    if not Path(log_dir).is_dir():
        raise InputDataError(log_dir, "no TensorBoard log folder here")
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags().get("scalars", []))
    per_epoch: dict[int, list[float]] = {}
    for event in events.Scalars(loss_tag) if loss_tag in tags else []:
        per_epoch.setdefault(math.ceil(event.step / iterations_per_epoch), []).append(float(event.value))
    loss = [[epoch, sum(values) / len(values)] for epoch, values in sorted(per_epoch.items())]
    validation = {int(e.step): float(e.value) for e in (events.Scalars(metric_tag) if metric_tag in tags else [])}
    return {"loss": loss, "validation": [[epoch, value] for epoch, value in sorted(validation.items())]}
