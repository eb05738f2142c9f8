# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""A MONAI dataset over a :class:`~scripts.data.preprocessed_cache.PreprocessedCache`: store once, read patches."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from monai.data import Dataset
from monai.transforms import apply_transform
from scripts.data.preprocessed_cache import PreprocessedCache


class PreprocessedDataset(Dataset):
    """Datalist items through a preprocessed cache, then ``transform`` (the random part: crop, augmentation).

    On construction every item's entry is checked and the missing ones are built (``build_workers`` processes).
    An item then yields its datalist keys (``case``, ...), the image (and label) as lazy
    :class:`~scripts.data.stored_volumes.StoredVolume` objects, and the stored small arrays (class locations,
    channel flags). The first transform reads from them, e.g.
    :class:`~scripts.transforms.stored_patches.RandCropStoredByPosNegd`.

    Args:
        data: datalist items, as for ``monai.data.Dataset``.
        cache: the cache the entries live in.
        transform: applied to each yielded item.
        build_workers: processes that build missing entries on construction (0: this process).
    """

    def __init__(
        self,
        data: Sequence[Mapping[str, Any]],
        cache: PreprocessedCache,
        transform: Callable | None = None,
        build_workers: int = 0,
    ) -> None:
        super().__init__(data=data, transform=transform)  # data and transform first: MONAI seeds in that order
        self.cache = cache
        cache.build_missing(self.data, workers=build_workers)

    def _transform(self, index: int) -> Any:
        sample = self.cache.sample(self.data[index])
        return apply_transform(self.transform, sample) if self.transform is not None else sample
