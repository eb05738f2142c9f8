# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Check a data item's files from their NIfTI headers alone, before any voxel is read or computed.

Inference runs this over every study before the first forward pass (:mod:`scripts.inference.study_batch`), so a
missing or unreadable file, a 2D volume, an unusable affine, a voxel size no scanner writes, a PET that does not
overlap its CT, or a label off the CT grid is reported at once, by name, instead of after hours of computing.
What only the voxels show (NaN, a CT not in HU, an empty PET) is found when the study is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scripts.data.grids import grid_difference, same_grid, voxel_spacing
from scripts.data.pet_ct_files import find_pet_partner
from scripts.data.plausibility import check_spacing
from scripts.data.volume_checks import check_affine, check_overlap, spatial_shape
from scripts.data.volumes import VolumeHeader, read_header
from scripts.errors import InputDataError


def _checked_header(path: str | Path, what: str, check_plausibility: bool) -> tuple[VolumeHeader, tuple[int, ...]]:
    header = read_header(path, what)
    shape = spatial_shape(np.broadcast_to(np.float32(0), header.shape), header.path)  # shape only, no voxels
    check_affine(header.affine, header.path)
    if check_plausibility:
        check_spacing(voxel_spacing(header.affine), header.path)
    return header, shape


def _two_channel_shape(header: VolumeHeader) -> tuple[int, int, int] | None:
    """The spatial shape of a 2-volume (CT, PET) file, or None for a plain 3D file."""
    shape = tuple(size for index, size in enumerate(header.shape) if index < 3 or size != 1)
    if len(shape) == 4:
        if shape[-1] != 2:
            raise InputDataError(
                header.path, f"a 4D file with {shape[-1]} volumes (shape {shape}); expected 2 (CT, PET)"
            )
        return shape[:3]  # type: ignore[return-value]
    return None


def check_item_headers(item: Mapping[str, Any], check_plausibility: bool = True, min_overlap: float = 0.5) -> None:
    """Check the CT, PET (or 2-channel file) and label of one data item from their headers.

    The same rules as loading (:class:`scripts.transforms.LoadPetCt`), as far as headers tell: files present and
    readable, 3D, usable affines, (with ``check_plausibility``) scanner voxel sizes, PET overlapping the CT by
    ``min_overlap`` per axis unless it is on the CT grid, label on the CT grid.

    Raises:
        InputDataError: the first problem, naming its file.
    """
    image = item.get("image")
    if isinstance(image, (list, tuple)) and len(image) == 2:
        ct_path, pet_path = image
    elif isinstance(image, (str, Path)):
        first = read_header(image, "image")
        ct_shape = _two_channel_shape(first)
        if ct_shape is not None:
            check_affine(first.affine, first.path)
            if check_plausibility:
                check_spacing(voxel_spacing(first.affine), first.path)
            _check_label(item, first.affine, ct_shape, first.path)
            return
        ct_path, pet_path = image, find_pet_partner(image)
    else:
        raise InputDataError(
            str(image), "expected [ct, pet] files, one CT file with a PET partner, or a 2-channel file"
        )
    ct, ct_shape = _checked_header(ct_path, "CT", check_plausibility)
    pet, pet_shape = _checked_header(pet_path, "PET", check_plausibility)
    if not same_grid(ct.affine, ct_shape, pet.affine, pet_shape):
        check_overlap(ct.affine, ct_shape, pet.affine, pet_shape, pet.path, min_fraction=min_overlap)
    _check_label(item, ct.affine, ct_shape, ct.path)


def _check_label(item: Mapping[str, Any], ct_affine: np.ndarray, ct_shape: tuple[int, ...], ct_path: Path) -> None:
    if item.get("label") is None:
        return
    label = read_header(item["label"], "label")
    shape = spatial_shape(np.broadcast_to(np.float32(0), label.shape), label.path)
    check_affine(label.affine, label.path)
    if not same_grid(ct_affine, ct_shape, label.affine, shape):
        difference = grid_difference(ct_affine, ct_shape, label.affine, shape)
        raise InputDataError(label.path, f"the label lies on another grid than the CT {ct_path} ({difference})")
