# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Read training patches (or whole volumes) from stored studies, touching only the bytes of the patch.

The items of :class:`~scripts.data.preprocessed_dataset.PreprocessedDataset` hold lazy stored volumes (anything
with ``shape``, ``dtype``, ``read(box, out)`` and ``to_metatensor(array, start)``). These transforms choose a box
exactly as their MONAI counterparts do on an in-memory volume, with the same random draws, read only that box,
and pad it to the patch size with zeros, symmetrically:

- :class:`RandCropStoredByPosNegd` = ``RandCropByPosNegLabeld(allow_smaller=True)`` then ``SpatialPadd``
  (optionally with a share of patches centred on hot background, the hard negatives);
- :class:`RandSpatialCropStoredd` = ``SpatialPadd`` then ``RandSpatialCropd`` (equal to crop-then-pad);
- :class:`LoadStoredd`: the whole volume, for validation.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.utils import get_random_patch, get_valid_patch_size
from monai.transforms import Crop, MapTransform, Randomizable, SpatialPad
from monai.transforms.utils import generate_pos_neg_label_crop_centers
from monai.utils import fall_back_tuple


class LazyVolume(Protocol):
    """What these transforms read from: :class:`~scripts.data.stored_volumes.StoredVolume`."""

    shape: tuple[int, ...]
    dtype: str

    def read(self, box: Sequence[slice] | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """The [C, *box] array of a spatial box, clipped to the volume (into ``out`` if given)."""
        ...

    def to_metatensor(self, array: np.ndarray | None = None, start: Sequence[int] = (0, 0, 0)) -> MetaTensor:
        """``array`` as a ``MetaTensor`` whose voxel 0 lies at stored voxel ``start``."""
        ...


def read_padded_box(volume: LazyVolume, box: Sequence[slice], size: Sequence[int]) -> MetaTensor:
    """Read ``box`` of ``volume`` (clipped to it), pad it symmetrically with zeros to ``size``, with its affine.

    The padding is ``SpatialPad``'s (half before, the rest after), so the result equals cropping an in-memory
    volume with ``box`` and then ``SpatialPadd(spatial_size=size)``.
    """
    spatial = volume.shape[1:]
    clipped = [slice(*s.indices(n)[:2]) for s, n in zip(box, spatial, strict=True)]
    extent = [max(s.stop - s.start, 0) for s in clipped]
    before = [width[0] for width in SpatialPad(spatial_size=size).compute_pad_width(extent)[1:]]
    padded = [max(e, s) for e, s in zip(extent, fall_back_tuple(size, extent), strict=True)]
    if padded == extent:
        patch = volume.read(clipped)
    else:  # read straight into the middle of the zero-padded patch
        patch = np.zeros((volume.shape[0], *padded), dtype=volume.dtype)
        volume.read(clipped, out=patch[(slice(None), *(slice(b, b + e) for b, e in zip(before, extent, strict=True)))])
    start = [s.start - b for s, b in zip(clipped, before, strict=True)]
    return volume.to_metatensor(patch, start)


class RandCropStoredByPosNegd(Randomizable, MapTransform):
    """One patch centred on a lesion voxel (``pos``), a background voxel (``neg``) or a hot one (``hot``).

    With ``hot=0`` it draws exactly as ``RandCropByPosNegLabeld(num_samples=1, allow_smaller=True)`` with
    precomputed ``fg_indices``/``bg_indices`` (the same random state gives the same centre). With ``hot > 0`` a
    share ``hot / (pos + neg + hot)`` of the patches is centred on a hot background voxel (``hot_indices`` of
    :class:`~scripts.transforms.ClassLocationsd`: PET uptake that is no lesion), the rest as before; a study without
    hot background falls back to the pos/neg draw. It reads only that patch and pads it to ``spatial_size`` like
    ``SpatialPadd``. The index keys are removed, as ``RandCropByPosNegLabeld`` does.

    Args:
        keys: the volumes to crop (image and label).
        label_key: the volume whose shape the indices refer to.
        spatial_size: patch size (X, Y, Z).
        pos: weight of lesion-centred patches.
        neg: weight of background-centred patches.
        hot: weight of patches centred on hot background (hard negatives); 0 turns them off.
        fg_indices_key: key of the lesion voxel indices (flat, C order).
        bg_indices_key: key of the background voxel indices.
        hot_indices_key: key of the hot background voxel indices (needed when ``hot > 0``).
        allow_missing_keys: do not raise when a key is absent.
    """

    def __init__(
        self,
        keys: KeysCollection,
        label_key: str,
        spatial_size: Sequence[int],
        pos: float = 1.0,
        neg: float = 1.0,
        hot: float = 0.0,
        fg_indices_key: str = "fg_indices",
        bg_indices_key: str = "bg_indices",
        hot_indices_key: str = "hot_indices",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        if pos < 0 or neg < 0 or pos + neg == 0:
            raise ValueError(f"pos and neg must be non-negative and not both 0, got pos={pos} neg={neg}")
        if hot < 0:
            raise ValueError(f"hot must be non-negative, got {hot}")
        self.label_key = label_key
        self.spatial_size = tuple(int(s) for s in spatial_size)
        self.pos_ratio = pos / (pos + neg)
        self.hot_ratio = hot / (pos + neg + hot)
        self.fg_indices_key, self.bg_indices_key, self.hot_indices_key = fg_indices_key, bg_indices_key, hot_indices_key
        self.center: tuple[int, ...] | None = None

    def randomize(
        self,
        label_shape: Sequence[int],
        fg_indices: np.ndarray,
        bg_indices: np.ndarray,
        hot_indices: np.ndarray | None = None,
    ) -> None:
        """Draw the patch centre (MONAI's ``generate_pos_neg_label_crop_centers`` on ``self.R``)."""
        if self.hot_ratio > 0 and self.R.rand() < self.hot_ratio and hot_indices is not None and len(hot_indices):
            fg_indices, pos_ratio = hot_indices, 1.0
        else:
            pos_ratio = self.pos_ratio
        centers = generate_pos_neg_label_crop_centers(
            self.spatial_size, 1, pos_ratio, label_shape, fg_indices, bg_indices, self.R, allow_smaller=True
        )
        self.center = tuple(int(c) for c in centers[0])

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Replace each volume in ``keys`` by its patch (a ``MetaTensor``)."""
        d = dict(data)
        if self.fg_indices_key not in d or self.bg_indices_key not in d:
            raise KeyError(
                f"{type(self).__name__} needs {self.fg_indices_key!r} and {self.bg_indices_key!r} (the class "
                f"locations a PreprocessedCache stores for labelled studies); the item has {sorted(map(str, d))}"
            )
        if self.hot_ratio > 0 and self.hot_indices_key not in d:
            raise KeyError(
                f"{type(self).__name__}(hot > 0) needs {self.hot_indices_key!r}: build the preprocessed cache with "
                f"ClassLocationsd(image_key=..., hot_above=...); the item has {sorted(map(str, d))}"
            )
        fg_indices, bg_indices = d.pop(self.fg_indices_key), d.pop(self.bg_indices_key)
        hot_indices = d.pop(self.hot_indices_key, None)
        label_shape = tuple(d[self.label_key].shape[1:])
        self.randomize(label_shape, fg_indices, bg_indices, hot_indices)
        size = fall_back_tuple(self.spatial_size, label_shape)
        box = Crop.compute_slices(roi_center=self.center, roi_size=size)
        for key in self.key_iterator(d):
            d[key] = read_padded_box(d[key], box, self.spatial_size)
        return d


class RandSpatialCropStoredd(Randomizable, MapTransform):
    """A uniformly placed patch of ``roi_size`` from stored volumes (MAE pretraining), zero-padded if smaller.

    Equals ``SpatialPadd(roi_size)`` then ``RandSpatialCropd(roi_size, random_size=False)`` on the in-memory
    volume, with the same random draws.

    Args:
        keys: the volumes to crop; the first present one decides the box.
        roi_size: patch size (X, Y, Z).
        allow_missing_keys: do not raise when a key is absent.
    """

    def __init__(self, keys: KeysCollection, roi_size: Sequence[int], allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.roi_size = tuple(int(s) for s in roi_size)
        self.box: tuple[slice, ...] | None = None

    def randomize(self, spatial_shape: Sequence[int]) -> None:
        """Draw the patch corner (MONAI's ``get_random_patch`` on ``self.R``)."""
        size = get_valid_patch_size(spatial_shape, fall_back_tuple(self.roi_size, spatial_shape))
        self.box = get_random_patch(spatial_shape, size, self.R)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Replace each volume in ``keys`` by its patch (a ``MetaTensor``)."""
        d = dict(data)
        self.randomize(tuple(d[self.first_key(d)].shape[1:]))
        for key in self.key_iterator(d):
            d[key] = read_padded_box(d[key], self.box, self.roi_size)
        return d


class LoadStoredd(MapTransform):
    """Read whole stored volumes into ``MetaTensor``s (float32, with the stored grid's affine), e.g. to validate."""

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Replace each stored volume in ``keys`` by its array."""
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = d[key].to_metatensor()
        return d
