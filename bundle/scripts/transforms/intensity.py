# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Per-channel intensity normalisation: clip to a window, then z-score with fixed dataset statistics."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform
from scripts.data.pet_ct_files import CT_CHANNEL, PET_CHANNEL


@dataclass(frozen=True)
class ClipNormalization:
    """Clip to [lower, upper], then subtract ``mean`` and divide by ``std`` (all in the channel's own unit)."""

    lower: float
    upper: float
    mean: float
    std: float

    def __post_init__(self) -> None:
        if not self.lower < self.upper:
            raise ValueError(f"lower ({self.lower}) must be below upper ({self.upper})")
        if not self.std > 0:
            raise ValueError(f"std must be positive, got {self.std}")


DEFAULT_NORMALIZATION: dict[int, ClipNormalization] = {
    # nnU-Net CTNormalization statistics of the autoPET III winner's plans (0.5/99.5 foreground percentiles,
    # foreground mean and sd), see docs/preprocessing.md.
    CT_CHANNEL: ClipNormalization(lower=-832.1, upper=1127.8, mean=107.7, std=286.3),  # HU
    PET_CHANNEL: ClipNormalization(lower=1.04, upper=51.2, mean=7.06, std=7.96),  # SUV
}


class ClipNormalized(MapTransform):
    """Clip and z-score one channel of the images in ``keys``; the other channels are left unchanged.

    Unset values default per channel: channel 0 (CT) clip [-832.1, 1127.8] HU, mean 107.7, sd 286.3;
    channel 1 (PET) clip [1.04, 51.2] SUV, mean 7.06, sd 7.96. The output is float32, meta kept.

    Args:
        keys: image key(s), channel-first.
        channel: the channel to normalise.
        lower: clip floor; ``None`` for the channel's default.
        upper: clip ceiling; ``None`` for the channel's default.
        mean: value subtracted after clipping; ``None`` for the channel's default.
        std: divisor after subtracting; ``None`` for the channel's default.
        allow_missing_keys: do not raise when a key is absent.
    """

    def __init__(
        self,
        keys: KeysCollection,
        channel: int,
        lower: float | None = None,
        upper: float | None = None,
        mean: float | None = None,
        std: float | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        given = {"lower": lower, "upper": upper, "mean": mean, "std": std}
        default = DEFAULT_NORMALIZATION.get(channel)
        if default is None and None in given.values():
            missing = ", ".join(name for name, value in given.items() if value is None)
            raise ValueError(f"channel {channel} has no default normalisation; set {missing}")
        values = {name: float(getattr(default, name) if value is None else value) for name, value in given.items()}
        self.channel = channel
        self.normalization = ClipNormalization(**values)

    def normalize(self, image: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Return a float32 copy of a channel-first ``image`` with the channel clipped and z-scored."""
        if image.shape[0] <= self.channel:
            raise ValueError(f"channel {self.channel} requested, but the image has {image.shape[0]} channel(s)")
        n = self.normalization
        if isinstance(image, np.ndarray):
            out = image.astype(np.float32, copy=True)
            out[self.channel] = (np.clip(out[self.channel], n.lower, n.upper) - n.mean) / n.std
            return out
        out = image.to(torch.float32, copy=True)
        out[self.channel] = (out[self.channel].clamp(n.lower, n.upper) - n.mean) / n.std
        return out

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Normalise the configured channel of every image in ``keys``."""
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normalize(d[key])
        return d
