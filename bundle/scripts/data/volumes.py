# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Reading NIfTI volumes, in one place: every module that opens a CT, PET, label or mask file comes through here.

:func:`read_volume` gives voxels + affine + header (nibabel); :func:`read_meta_volume` gives a MONAI
``MetaTensor`` for the transforms, whose inverse (``Invertd``) and ``SaveImaged`` need the meta dict that MONAI's
``NibabelReader`` writes. Both raise the same :class:`InputDataError` wording for a missing or unreadable file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from monai.data import MetaTensor
from monai.transforms import LoadImage
from scripts.errors import InputDataError

PathLike = str | os.PathLike


@dataclass(frozen=True)
class Volume:
    """One NIfTI volume as read from disk: voxels (on-disk dtype unless asked otherwise), affine, header."""

    path: Path
    array: np.ndarray
    affine: np.ndarray
    header: nib.Nifti1Header

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """The first three axes of the voxel array."""
        return tuple(int(size) for size in self.array.shape[:3])  # type: ignore[return-value]

    @property
    def zooms_mm(self) -> tuple[float, float, float]:
        """Voxel size in mm along the three spatial axes, from the header."""
        return tuple(float(size) for size in self.header.get_zooms()[:3])  # type: ignore[return-value]


def _existing(path: PathLike, what: str) -> Path:
    file = Path(path)
    if not file.is_file():
        raise InputDataError(file, f"{what + ' ' if what else ''}file not found")
    return file


def _unreadable(file: Path, error: Exception) -> InputDataError:
    detail = str(error).strip().splitlines()[0][:200] if str(error).strip() else "no detail"
    return InputDataError(file, f"cannot be read as a NIfTI image ({type(error).__name__}: {detail})")


def read_volume(path: PathLike, what: str = "", dtype: np.dtype | type | None = None) -> Volume:
    """Read a NIfTI file's voxels (``dtype``: cast, else the stored type), affine (float64) and header.

    Args:
        path: the file.
        what: what the file is ("PET", "prediction", ...), named in the error for a missing file.
        dtype: voxel type to cast to; ``None`` keeps the on-disk type (masks stay integer).

    Raises:
        InputDataError: the file is missing, or nibabel cannot read it (damaged, truncated, not NIfTI).
    """
    file = _existing(path, what)
    try:
        image = nib.load(str(file))
        array = np.asanyarray(image.dataobj) if dtype is None else np.asarray(image.dataobj, dtype=dtype)
    except Exception as error:  # nibabel raises many types (ImageFileError, EOFError, zlib.error, ...)
        raise _unreadable(file, error) from error
    return Volume(file, array, np.asarray(image.affine, dtype=np.float64), image.header)


@dataclass(frozen=True)
class VolumeHeader:
    """What a NIfTI header says about its volume, read without the voxels (cheap checks before computing)."""

    path: Path
    shape: tuple[int, ...]
    affine: np.ndarray


def read_header(path: PathLike, what: str = "") -> VolumeHeader:
    """Read only the header of a NIfTI file: its voxel array shape and affine (float64).

    Raises:
        InputDataError: the file is missing, or nibabel cannot read its header (not NIfTI, damaged).
    """
    file = _existing(path, what)
    try:
        image = nib.load(str(file))
        return VolumeHeader(file, tuple(int(size) for size in image.shape), np.asarray(image.affine, dtype=np.float64))
    except Exception as error:  # nibabel raises many types (ImageFileError, EOFError, zlib.error, ...)
        raise _unreadable(file, error) from error


def read_meta_volume(path: PathLike) -> MetaTensor:
    """Read a NIfTI file with MONAI's nibabel reader as float32, meta included, without adding a channel.

    Raises:
        InputDataError: the file is missing or cannot be read.
    """
    file = _existing(path, "")
    try:
        nib.load(str(file))  # the header first: nibabel says in one line what is wrong with a foreign file
        return LoadImage(reader="NibabelReader", image_only=True, dtype=np.float32)(str(file))
    except Exception as error:  # nibabel raises several types for damaged or non-NIfTI files
        raise _unreadable(file, error) from error
