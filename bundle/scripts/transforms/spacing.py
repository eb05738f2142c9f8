# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Resampling to the target voxel size that leaves every other item of the data dictionary as it found it."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, MutableMapping
from typing import Any

from monai.transforms import Spacingd


class MetaSafeSpacingd(Spacingd):
    """MONAI's ``Spacingd``, except that items which only share a name prefix with a resampled key are left alone.

    After resampling key ``k``, MONAI 1.6.1's ``Spacingd`` calls ``.update(meta)`` on every item whose key starts
    with ``k + "_"`` (meant for the old ``k_meta_dict`` dictionaries). MONAI Label's infer task puts the request's
    image path, a string, under ``image_path``, and any client may add more such keys, so plain ``Spacingd``
    fails there with ``'str' object has no attribute 'update'``. Here only mapping values get that update; every
    other such item is set aside for the call and put back unchanged. Arguments, inversion and laziness are
    ``Spacingd``'s.
    """

    def __call__(self, data: Mapping[Hashable, Any], lazy: bool | None = None) -> dict[Hashable, Any]:
        """Resample ``self.keys`` as ``Spacingd`` does, keeping non-mapping ``<key>_*`` items untouched."""
        d = dict(data)
        prefixes = tuple(f"{key}_" for key in self.keys)
        names = [k for k in d if isinstance(k, str) and k.startswith(prefixes) and not isinstance(d[k], MutableMapping)]
        set_aside = {name: d.pop(name) for name in names}
        resampled = super().__call__(d, lazy=lazy)
        resampled.update(set_aside)
        return resampled
