# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""A PNG of the training-loss and validation-Dice curves, rewritten at every epoch end and validation.

:class:`TrainingCurves` collects the mean training loss of each epoch and the validation metric of each
validation, keeps them in ``training_curves.json`` and draws ``training_curves.png`` beside the TensorBoard
logs. Both files are written under a temporary name and renamed, so a reader never sees half a file. A resumed
run reads the JSON back and continues the curves from the epoch it resumes at.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scripts.atomic_io import atomic_path, write_json

logger = logging.getLogger(__name__)

CURVES_PNG = "training_curves.png"
CURVES_JSON = "training_curves.json"


def plot_curves(history: dict[str, list], path: str | os.PathLike, metric_label: str = "validation Dice") -> Path:
    """Draw ``history`` (``loss``: [[epoch, mean loss]], ``validation``: [[epoch, value]]) as a PNG at ``path``."""
    figure = Figure(figsize=(7.0, 5.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    loss_axes, metric_axes = figure.subplots(2, 1, sharex=True)
    if history["loss"]:
        epochs, losses = zip(*history["loss"], strict=True)
        loss_axes.plot(epochs, losses, marker="." if len(epochs) < 50 else None, color="tab:blue")
    loss_axes.set_ylabel("training loss (epoch mean)")
    loss_axes.grid(alpha=0.3)
    if history["validation"]:
        epochs, values = zip(*history["validation"], strict=True)
        metric_axes.plot(epochs, values, marker="o", color="tab:green")
        best = max(range(len(values)), key=lambda i: -math.inf if math.isnan(values[i]) else values[i])
        metric_axes.set_title(f"best {metric_label} {values[best]:.4f} at epoch {epochs[best]}", fontsize=9)
    metric_axes.set_ylim(0.0, 1.0)
    metric_axes.set_ylabel(metric_label)
    metric_axes.set_xlabel("epoch")
    metric_axes.grid(alpha=0.3)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return Path(path)


class TrainingCurves:
    """Attach to a trainer; with ``validator``, also record that evaluator's ``metric`` after each validation.

    Args:
        output_dir: folder for ``training_curves.png`` and ``training_curves.json`` (the TensorBoard log folder).
        validator: the evaluator run by the trainer's ``ValidationHandler``; ``None`` draws the loss only.
        metric: name of the validation metric to draw, in ``validator.state.metrics``.
        loss_key: where the trainer keeps the loss in ``engine.state.output``.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        validator: Engine | None = None,
        metric: str = "val_mean_dice",
        loss_key: str = "loss",
    ) -> None:
        self.output_dir = Path(output_dir)
        self.validator = validator
        self.metric = metric
        self.loss_key = loss_key
        self.history: dict[str, list] = {"loss": [], "validation": []}
        self._loss_sum = 0.0
        self._loss_count = 0
        self._first_epoch = True

    @property
    def png_path(self) -> Path:
        """The curves PNG, ``output_dir/training_curves.png``."""
        return self.output_dir / CURVES_PNG

    @property
    def json_path(self) -> Path:
        """The stored points, ``output_dir/training_curves.json``."""
        return self.output_dir / CURVES_JSON

    def attach(self, engine: Engine) -> None:
        """Collect ``engine``'s losses and redraw at its epoch ends and after each validation."""
        engine.add_event_handler(Events.STARTED, self._start_run)
        engine.add_event_handler(Events.EPOCH_STARTED, self._start_epoch)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._add_loss)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._end_epoch)
        if self.validator is not None:
            self.validator.add_event_handler(Events.EPOCH_COMPLETED, self._add_validation)

    def _start_run(self, engine: Engine) -> None:
        self._first_epoch = True

    def _start_epoch(self, engine: Engine) -> None:
        """Reset the epoch's loss sum; in a run's first epoch, keep the stored points of earlier epochs (resume)."""
        self._loss_sum, self._loss_count = 0.0, 0
        if self._first_epoch:
            self._first_epoch = False
            self.history = {"loss": [], "validation": []}
            if engine.state.epoch > 1 and self.json_path.is_file():
                try:
                    stored = json.loads(self.json_path.read_text())
                    for key in self.history:
                        self.history[key] = [point for point in stored.get(key, []) if point[0] < engine.state.epoch]
                except (ValueError, TypeError, IndexError, AttributeError) as error:
                    logger.warning("%s: not a curves history (%s); the curves start afresh", self.json_path, error)
                    self.history = {"loss": [], "validation": []}

    def _add_loss(self, engine: Engine) -> None:
        loss = engine.state.output[self.loss_key]
        value = float(loss.detach().float().mean()) if isinstance(loss, torch.Tensor) else float(loss)
        self._loss_sum += value
        self._loss_count += 1

    def _end_epoch(self, engine: Engine) -> None:
        if self._loss_count:
            self.history["loss"].append([engine.state.epoch, self._loss_sum / self._loss_count])
        self.write()

    def _add_validation(self, validator: Engine) -> None:
        if self.metric in validator.state.metrics:
            point = [validator.state.epoch, float(validator.state.metrics[self.metric])]
            self.history["validation"] = [p for p in self.history["validation"] if p[0] != point[0]] + [point]
            self.write()

    def write(self) -> None:
        """Write the JSON history and redraw the PNG, each atomically."""
        write_json(self.history, self.json_path)
        plot_curves(self.history, self.png_path)
