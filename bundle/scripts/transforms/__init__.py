# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""PET/CT preprocessing transforms for the bundle configs, and the pieces they are built from.

``petct_preprocessing`` builds, for every config, in this order (docs/preprocessing.md)::

    LoadPetCtd -> Orientationd("RAS") -> MetaSafeSpacingd([2.036, 2.036, 3.0]) -> CropBodyd -> ClipNormalized (CT, PET)
    -> EnsureTyped

and ``Invertd(keys="pred", transform=<that Compose>, orig_keys="image")`` puts a prediction back on the CT grid.
"""

from scripts.data.pet_ct_files import CHANNEL_NAMES, CT_CHANNEL, PET_CHANNEL, find_pet_partner, pet_partner_candidates
from scripts.transforms.body_crop import BODY_MARGIN_VOXELS, BODY_THRESHOLD_HU, AboveThreshold, CropBodyd
from scripts.transforms.intensity import DEFAULT_NORMALIZATION, ClipNormalization, ClipNormalized
from scripts.transforms.pet_ct_loading import PET_FILENAME_KEY, LoadPetCt, LoadPetCtd, load_label
from scripts.transforms.pipeline import PAPER_SPACING_MM, petct_preprocessing
from scripts.transforms.sampling import ClassLocationsd, sample_flat_indices
from scripts.transforms.spacing import MetaSafeSpacingd

__all__ = [
    "PAPER_SPACING_MM",
    "petct_preprocessing",
    "BODY_MARGIN_VOXELS",
    "BODY_THRESHOLD_HU",
    "CHANNEL_NAMES",
    "CT_CHANNEL",
    "DEFAULT_NORMALIZATION",
    "PET_CHANNEL",
    "PET_FILENAME_KEY",
    "AboveThreshold",
    "ClassLocationsd",
    "ClipNormalization",
    "ClipNormalized",
    "CropBodyd",
    "LoadPetCt",
    "LoadPetCtd",
    "MetaSafeSpacingd",
    "find_pet_partner",
    "load_label",
    "pet_partner_candidates",
    "sample_flat_indices",
]
