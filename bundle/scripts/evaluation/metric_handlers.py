# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The autoPET metrics as a MONAI cumulative metric and an ignite handler for validation configs.

Built like ``monai.metrics.DiceMetric`` + ``monai.handlers.MeanDice``: :class:`AutoPETMetric` computes
one value per study and buffers it, :class:`AutoPETMetricHandler` wraps it for an ignite engine, so it can
be the ``key_val_metric`` or an ``additional_metrics`` entry of a ``SupervisedEvaluator`` and
``MetricsSaver`` can write the per-study values. Config example::

    "key_metric": {
        "val_dice": {
            "_target_": "scripts.evaluation.metric_handlers.AutoPETMetricHandler",
            "metric_name": "dice",
            "output_transform": "$monai.handlers.from_engine(['pred', 'label'])"
        }
    }

The voxel volume comes from the prediction's ``MetaTensor`` affine (the validation grid is usually
resampled, so the original file's header does not apply); pass ``voxel_ml`` for plain tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.handlers import IgniteMetricHandler
from monai.metrics import CumulativeIterationMetric
from scripts.evaluation.autopet_metrics import (
    affine_voxel_volume_ml,
    dice_score,
    false_negative_volume,
    false_positive_volume,
    nan_mean,
)

# Per-study functions by metric name; each takes (gt mask, pred mask, voxel volume in ml).
METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray, float], float]] = {
    "dice": lambda gt, pred, voxel_ml: dice_score(gt, pred),
    "fpv": false_positive_volume,
    "fnv": false_negative_volume,
}


def lesion_masks(tensor: torch.Tensor, name: str) -> np.ndarray:
    """Boolean lesion masks ``[B, X, Y, Z]`` from one-hot ``[B, 2, X, Y, Z]`` (channel 1) or labels ``[B, 1, X, Y, Z]``.

    Raises:
        ValueError: the shape is not 5D with 1 or 2 channels, or the lesion channel is not binary (0/1).
    """
    data = tensor.as_tensor() if isinstance(tensor, MetaTensor) else torch.as_tensor(tensor)
    if data.ndim != 5 or data.shape[1] not in (1, 2):
        raise ValueError(
            f"{name} must be [B, 2, X, Y, Z] one-hot (channel 1 = lesion) or a [B, 1, X, Y, Z] label map, "
            f"got shape {tuple(data.shape)}"
        )
    lesion = data[:, data.shape[1] - 1]
    if bool(((lesion != 0) & (lesion != 1)).any()):
        raise ValueError(f"{name} must be binary (0/1); discretise it first, e.g. AsDiscrete(argmax=True)")
    return (lesion != 0).cpu().numpy()


def batch_voxel_volumes(y_pred: Any, y: Any, batch: int, voxel_ml: float | None = None) -> list[float]:
    """Voxel volume in ml of each study in a batch.

    Uses ``voxel_ml`` when given, else the affine of ``y_pred`` (or of ``y`` when only that is a
    ``MetaTensor``); a batched ``MetaTensor`` carries one affine per study.

    Raises:
        ValueError: no ``voxel_ml`` and neither input is a ``MetaTensor``.
    """
    if voxel_ml is not None:
        return [float(voxel_ml)] * batch
    source = y_pred if isinstance(y_pred, MetaTensor) else y if isinstance(y, MetaTensor) else None
    if source is None:
        raise ValueError("the voxel volume is unknown: pass MetaTensors (with their affine) or set voxel_ml")
    affines = source.affine.detach().cpu().numpy()
    if affines.ndim == 2:
        return [affine_voxel_volume_ml(affines)] * batch
    if affines.shape[0] != batch:
        raise ValueError(f"the MetaTensor holds {affines.shape[0]} affines for a batch of {batch}")
    return [affine_voxel_volume_ml(affine) for affine in affines]


class AutoPETMetric(CumulativeIterationMetric):
    """One autoPET metric per study, buffered over iterations and averaged the challenge's way.

    Dice and FNV are NaN for a study without lesions and are averaged over the studies with lesions
    only; FPV is averaged over all studies. :meth:`aggregate` returns NaN when nothing is left to average.

    Args:
        metric_name: ``"dice"``, ``"fpv"`` (false-positive volume, ml) or ``"fnv"`` (false-negative volume, ml).
        voxel_ml: fixed voxel volume in ml; by default it is read from each prediction's affine.
    """

    def __init__(self, metric_name: str = "dice", voxel_ml: float | None = None) -> None:
        super().__init__()
        if metric_name not in METRIC_FUNCTIONS:
            raise ValueError(f"metric_name must be one of {sorted(METRIC_FUNCTIONS)}, got {metric_name!r}")
        self.metric_name = metric_name
        self.voxel_ml = voxel_ml

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        """Return the metric of each study of the batch, shape ``[B, 1]`` (float64, NaN for negatives)."""
        if y is None:
            raise ValueError("the autoPET metrics need the ground truth y")
        pred = lesion_masks(y_pred, "y_pred")
        truth = lesion_masks(y, "y")
        if pred.shape != truth.shape:
            raise ValueError(f"y_pred and y differ in shape: {tuple(pred.shape)} vs {tuple(truth.shape)}")
        volumes = batch_voxel_volumes(y_pred, y, pred.shape[0], self.voxel_ml)
        compute = METRIC_FUNCTIONS[self.metric_name]
        values = [compute(truth[i], pred[i], volumes[i]) for i in range(pred.shape[0])]
        return torch.tensor(values, dtype=torch.float64).reshape(-1, 1)

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        """Mean over the buffered studies, NaN values skipped (challenge rule), as a 0-d tensor."""
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(f"nothing to aggregate: the buffer holds {type(data).__name__}")
        return torch.tensor(nan_mean(data.flatten().tolist()), dtype=torch.float64)


class AutoPETMetricHandler(IgniteMetricHandler):
    """Ignite handler of one autoPET metric (like ``monai.handlers.MeanDice``).

    With ``save_details`` the per-study values go to ``engine.state.metric_details[<name>]``, which
    ``MetricsSaver`` writes as ``<name>_raw.csv``.

    Args:
        metric_name: ``"dice"``, ``"fpv"`` or ``"fnv"``.
        voxel_ml: fixed voxel volume in ml; by default read from each prediction's ``MetaTensor`` affine.
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``, e.g.
            ``monai.handlers.from_engine(["pred", "label"])``.
        save_details: keep per-study values in ``engine.state.metric_details``.
    """

    def __init__(
        self,
        metric_name: str = "dice",
        voxel_ml: float | None = None,
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
    ) -> None:
        super().__init__(
            metric_fn=AutoPETMetric(metric_name=metric_name, voxel_ml=voxel_ml),
            output_transform=output_transform,
            save_details=save_details,
        )
