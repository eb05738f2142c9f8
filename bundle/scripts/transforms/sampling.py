# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Where patches can be centred: a capped sample of lesion and background voxels, computed once per study.

Optionally a third class, *hot background*: voxels whose PET is at least a threshold but which are no lesion
(bladder, kidneys, brain, glands: the physiological uptake that a threshold mistakes for tumour). Centring some
patches on them (hard negatives) teaches a network what to reject. Each connected hot region of at least
``hot_min_voxels`` contributes at most its share of ``max_samples``, so that the brain does not crowd out the
ureters, glands and small foci.

``RandCropByPosNegLabeld`` otherwise scans the whole label volume on every call; MONAI's ``FgBgToIndicesd``
stores every voxel index (hundreds of MB for a whole-body study). Like nnU-Net's class locations, this keeps at
most ``max_samples`` of each, drawn with a fixed seed, so the result is deterministic and a ``CacheDataset``
caches it.
"""

from __future__ import annotations

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform
from monai.utils import convert_to_numpy
from scipy import ndimage
from scripts.data.pet_ct_files import PET_CHANNEL


def sample_flat_indices(mask: np.ndarray, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Flat (C-order) indices of up to ``max_samples`` true voxels of ``mask``, sorted."""
    return _capped(np.flatnonzero(mask), max_samples, rng)


def _capped(indices: np.ndarray, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    """``indices`` (ascending), or a sorted random ``max_samples`` of them when there are more."""
    if indices.size > max_samples:
        indices = np.sort(rng.choice(indices, size=max_samples, replace=False))
    return indices


class ClassLocationsd(MapTransform):
    """Store sampled foreground / background (/ hot background) voxel indices of ``keys`` (a label).

    Args:
        keys: the label key (one).
        fg_indices_key: where the lesion voxel indices go (``RandCropByPosNegLabeld(fg_indices_key=...)``).
        bg_indices_key: where the background voxel indices go.
        max_samples: most indices kept per class.
        seed: seed of the subsampling (a fixed seed keeps the transform deterministic, hence cacheable).
        image_key: the image whose ``hot_channel`` defines hot background; ``None``: no hot background indices.
        hot_channel: the image channel compared with ``hot_above`` (PET).
        hot_above: background voxels with ``image[hot_channel] >= hot_above`` (in the image's own, e.g.
            normalised, units) are hot background.
        hot_indices_key: where the hot background indices go.
        hot_min_voxels: hot regions (26-connected) smaller than this are left out (noise).
    """

    def __init__(
        self,
        keys: KeysCollection,
        fg_indices_key: str = "fg_indices",
        bg_indices_key: str = "bg_indices",
        max_samples: int = 10000,
        seed: int = 0,
        image_key: str | None = None,
        hot_channel: int = PET_CHANNEL,
        hot_above: float | None = None,
        hot_indices_key: str = "hot_indices",
        hot_min_voxels: int = 8,
    ) -> None:
        super().__init__(keys)
        if max_samples < 1:
            raise ValueError(f"max_samples must be at least 1, got {max_samples}")
        if (image_key is None) != (hot_above is None):
            raise ValueError(f"set image_key and hot_above together, got image_key={image_key!r} hot_above={hot_above}")
        self.fg_indices_key, self.bg_indices_key = fg_indices_key, bg_indices_key
        self.max_samples, self.seed = max_samples, seed
        self.image_key, self.hot_channel, self.hot_indices_key = image_key, hot_channel, hot_indices_key
        self.hot_above = None if hot_above is None else float(hot_above)
        self.hot_min_voxels = int(hot_min_voxels)

    def __call__(self, data: dict) -> dict:
        """Add the index arrays to a copy of ``data``."""
        result = dict(data)
        for key in self.key_iterator(result):
            mask = convert_to_numpy(result[key])[0] > 0
            rng = np.random.default_rng(self.seed)
            result[self.fg_indices_key] = sample_flat_indices(mask, self.max_samples, rng)
            result[self.bg_indices_key] = sample_flat_indices(~mask, self.max_samples, rng)
            if self.image_key is not None:
                image = convert_to_numpy(result[self.image_key])
                if image.shape[0] <= self.hot_channel or image.shape[1:] != mask.shape:
                    raise ValueError(
                        f"{self.image_key!r} has shape {tuple(image.shape)}: no channel {self.hot_channel} on the "
                        f"label's grid {tuple(mask.shape)}"
                    )
                hot = (image[self.hot_channel] >= self.hot_above) & ~mask
                result[self.hot_indices_key] = sample_region_indices(hot, self.hot_min_voxels, self.max_samples, rng)
        return result


def sample_region_indices(mask: np.ndarray, min_voxels: int, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted flat indices of ``mask``'s 26-connected regions of at least ``min_voxels`` voxels.

    Each region keeps at most an equal share of ``max_samples``, so a uniform draw does not favour the largest.
    """
    regions, count = ndimage.label(mask, structure=np.ones((3,) * mask.ndim, dtype=bool))
    voxels = np.flatnonzero(regions)
    region_of = regions.ravel()[voxels]
    sizes = np.bincount(region_of, minlength=count + 1)[1:]
    kept = np.flatnonzero(sizes >= min_voxels)
    if kept.size == 0:
        return np.zeros(0, dtype=np.int64)
    quota = max(max_samples // kept.size, 1)
    # hot voxels grouped by region (ascending within each), one array per region
    by_region = np.split(voxels[np.argsort(region_of, kind="stable")], np.cumsum(sizes)[:-1])
    return np.sort(np.concatenate([_capped(by_region[r], quota, rng) for r in kept])).astype(np.int64)
