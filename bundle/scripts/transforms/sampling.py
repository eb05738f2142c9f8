# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Where patches can be centred: a capped sample of lesion and background voxels, computed once per study.

``RandCropByPosNegLabeld`` otherwise scans the whole label volume on every call; MONAI's ``FgBgToIndicesd``
stores every voxel index (hundreds of MB for a whole-body study). Like nnU-Net's class locations, this keeps at
most ``max_samples`` of each, drawn with a fixed seed, so the result is deterministic and a ``CacheDataset``
caches it.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform


def sample_flat_indices(mask: np.ndarray, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Flat (C-order) indices of up to ``max_samples`` true voxels of ``mask``, sorted."""
    indices = np.flatnonzero(mask)
    if indices.size > max_samples:
        indices = np.sort(rng.choice(indices, size=max_samples, replace=False))
    return indices


class ClassLocationsd(MapTransform):
    """Store sampled foreground / background voxel indices of ``keys`` (a label) for patch sampling.

    Args:
        keys: the label key (one).
        fg_indices_key: where the lesion voxel indices go (``RandCropByPosNegLabeld(fg_indices_key=...)``).
        bg_indices_key: where the background voxel indices go.
        max_samples: most indices kept per class.
        seed: seed of the subsampling (a fixed seed keeps the transform deterministic, hence cacheable).
    """

    def __init__(
        self,
        keys: KeysCollection,
        fg_indices_key: str = "fg_indices",
        bg_indices_key: str = "bg_indices",
        max_samples: int = 10000,
        seed: int = 0,
    ) -> None:
        super().__init__(keys)
        if max_samples < 1:
            raise ValueError(f"max_samples must be at least 1, got {max_samples}")
        self.fg_indices_key, self.bg_indices_key = fg_indices_key, bg_indices_key
        self.max_samples, self.seed = max_samples, seed

    def __call__(self, data: dict) -> dict:
        """Add the two index arrays to a copy of ``data``."""
        result = dict(data)
        for key in self.key_iterator(result):
            label = result[key]
            mask = np.asarray(label.detach().cpu() if isinstance(label, torch.Tensor) else label)[0] > 0
            rng = np.random.default_rng(self.seed)
            result[self.fg_indices_key] = sample_flat_indices(mask, self.max_samples, rng)
            result[self.bg_indices_key] = sample_flat_indices(~mask, self.max_samples, rng)
        return result
