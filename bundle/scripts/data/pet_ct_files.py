# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""PET/CT study files: the channel order and the CT -> PET naming conventions (reading: :mod:`scripts.data.volumes`)."""

from __future__ import annotations

import os
from pathlib import Path

from monai.data import MetaTensor
from scripts.data.file_layout import (
    NIFTI_SUFFIXES,
    NNUNET_CT_SUFFIX,
    NNUNET_PET_SUFFIX,
    RELEASE_CT_FILE,
    RELEASE_PET_FILE,
    STUDIES_PET_FOLDER,
    strip_nifti_suffix,
)
from scripts.errors import InputDataError

# Channel of the CT (HU) in the 2-channel image.
CT_CHANNEL = 0
# Channel of the PET (SUV) in the 2-channel image.
PET_CHANNEL = 1
CHANNEL_NAMES = ("CT", "PET")

# Meta key under which the loader records the PET file (``filename_or_obj`` stays the CT file).
PET_FILENAME_KEY = "pet_filename_or_obj"

# Datalist key that names a study's PET file apart from its CT (pretraining); ``null`` marks a CT-only study.
PET_KEY = "pet"

AUTOPET_CT_NAME, AUTOPET_PET_NAME = strip_nifti_suffix(RELEASE_CT_FILE), strip_nifti_suffix(RELEASE_PET_FILE)

PathLike = str | os.PathLike


def _split_nifti_name(name: str) -> tuple[str, str]:
    """``case_0000.nii.gz`` -> (``case_0000``, ``.nii.gz``); a name without a NIfTI suffix -> (name, "")."""
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)], suffix
    return name, ""


def pet_partner_candidates(ct_path: PathLike) -> list[Path]:
    """The PET files that the naming conventions pair with ``ct_path``, most likely first; [] for a PET file.

    nnU-Net: ``<case>_0000.nii.gz`` -> ``<case>_0001.nii.gz``; autoPET release: ``CTres.nii.gz`` -> ``SUV.nii.gz``
    in the same folder; any other name (a MONAI Label studies folder): ``<study>.nii.gz`` ->
    ``pet/<study>.nii.gz`` beside it. Either NIfTI suffix is accepted for the partner, the CT's own first. A
    name that is itself a PET (``<case>_0001``, ``SUV``) has no partner.
    """
    path = Path(ct_path)
    stem, suffix = _split_nifti_name(path.name)
    folder = path.parent
    if stem.endswith(NNUNET_CT_SUFFIX):
        pet_stem = stem[: -len(NNUNET_CT_SUFFIX)] + NNUNET_PET_SUFFIX
    elif stem == AUTOPET_CT_NAME:
        pet_stem = AUTOPET_PET_NAME
    elif stem.endswith(NNUNET_PET_SUFFIX) or stem == AUTOPET_PET_NAME:
        return []
    else:
        pet_stem, folder = stem, folder / STUDIES_PET_FOLDER
    suffixes = [suffix] + [s for s in NIFTI_SUFFIXES if s != suffix] if suffix else list(NIFTI_SUFFIXES)
    return [folder / (pet_stem + s) for s in suffixes]


_CONVENTIONS = (
    f"<case>{NNUNET_CT_SUFFIX}.nii.gz -> <case>{NNUNET_PET_SUFFIX}.nii.gz, {AUTOPET_CT_NAME}.nii.gz -> "
    f"{AUTOPET_PET_NAME}.nii.gz, or <study>.nii.gz -> {STUDIES_PET_FOLDER}/<study>.nii.gz"
)


def find_pet_partner(ct_path: PathLike) -> Path:
    """Return the PET file that belongs to the CT file ``ct_path`` by naming convention.

    Raises:
        InputDataError: ``ct_path`` is itself a PET file, or the partner file does not exist.
    """
    candidates = pet_partner_candidates(ct_path)
    if not candidates:
        raise InputDataError(
            ct_path, f"this is a PET file, not a CT: open the study's CT ({_CONVENTIONS}), or pass [ct, pet]"
        )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise InputDataError(ct_path, f"its PET partner {candidates[0]} does not exist (CT -> PET by name: {_CONVENTIONS})")


def squeeze_trailing(volume: MetaTensor) -> MetaTensor:
    """Drop singleton axes after the first three (NIfTI stores some 3D or 2-volume images with extra unit axes)."""
    shape = tuple(volume.shape)
    if len(shape) <= 3:
        return volume
    kept = shape[:3] + tuple(s for s in shape[3:] if s != 1)
    return volume.reshape(kept) if kept != shape else volume
