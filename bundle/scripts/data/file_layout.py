# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The file-naming conventions of PET/CT studies, defined once: NIfTI suffixes, nnU-Net channels, autoPET files."""

from __future__ import annotations

import re

NIFTI_SUFFIXES = (".nii.gz", ".nii")
NNUNET_CT_SUFFIX, NNUNET_PET_SUFFIX = "_0000", "_0001"  # nnU-Net channel files: CT = 0, PET = 1
RELEASE_CT_FILE, RELEASE_PET_FILE, RELEASE_LABEL_FILE = "CTres.nii.gz", "SUV.nii.gz", "SEG.nii.gz"  # autoPET


def strip_nifti_suffix(name: str) -> str:
    """``case_0000.nii.gz`` -> ``case_0000``; a name without a NIfTI suffix is returned as it is."""
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def safe_name(text: str) -> str:
    """File-name-safe study name: runs of characters outside ``[A-Za-z0-9._-]`` become ``_``; never empty or hidden."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "case"
