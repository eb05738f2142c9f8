# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Load pretraining studies that may lack a PET: PET/CT pairs and CT-only (e.g. longitudinal CT) volumes.

Every study becomes the same 2-channel image on the CT grid (CT = 0, PET = 1) plus per-channel validity flags,
so PET/CT and CT-only samples share one batch; the loss then skips the PET channel of CT-only samples.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform
from scripts.data.pet_ct_files import squeeze_trailing
from scripts.data.plausibility import check_ct_plausibility
from scripts.data.volume_checks import check_affine, check_image
from scripts.data.volumes import read_meta_volume
from scripts.errors import InputDataError
from scripts.mae.keys import PET_KEY, VALID_KEY
from scripts.transforms import CHANNEL_NAMES, CT_CHANNEL, PET_CHANNEL, PET_FILENAME_KEY, LoadPetCt


def load_ct_only(ct_path: str, check_plausibility: bool = True) -> MetaTensor:
    """A CT file as a [2, X, Y, Z] float32 image whose PET channel is all zeros, meta as :class:`LoadPetCt`'s.

    Raises:
        InputDataError: the CT is missing, unreadable, not 3D, empty or non-finite, has an unusable affine, or
            (with ``check_plausibility``) does not look like a CT in HU (:mod:`scripts.data.plausibility`).
    """
    ct = squeeze_trailing(read_meta_volume(ct_path))
    shape = check_image(ct.numpy(), ct_path)
    check_affine(ct.affine.numpy(), ct_path)
    if check_plausibility:
        check_ct_plausibility(ct.numpy(), ct.affine.numpy(), ct_path)
    data = torch.zeros((len(CHANNEL_NAMES), *shape), dtype=torch.float32)
    data[CT_CHANNEL] = ct.as_tensor().reshape(shape)
    meta = {key: value for key, value in ct.meta.items() if key != "affine"}
    meta["original_channel_dim"] = 0
    meta[PET_FILENAME_KEY] = ""  # same meta keys as a PET/CT study, so both kinds collate into one batch
    return MetaTensor(data, affine=ct.affine.clone(), meta=meta)


class LoadPretrainingStudyd(MapTransform):
    """Load a PET/CT or a CT-only study as [2, X, Y, Z] (CT = 0, PET = 1) and write per-channel flags [2].

    Datalist items (paths as ``load_decathlon_datalist`` resolves them):

    - ``{"image": [ct, pet]}`` (or any other :class:`~scripts.transforms.LoadPetCt` entry): a PET/CT study,
      flags ``[1, 1]``;
    - ``{"image": ct, "pet": pet}``: the same, with the PET named separately;
    - ``{"image": ct, "pet": null}``: a CT-only study: the PET channel is all zeros, flags ``[1, 0]``.

    The ``pet`` key is removed afterwards so PET/CT and CT-only items collate together. The PET channel of a
    CT-only study stops being 0 once normalised; :class:`~scripts.mae.RandBlockMaskd` zeroes it again (after
    normalisation) from the flags, and :class:`~scripts.mae.MaskedReconstructionLoss` scores no PET for it.

    Args:
        keys: the image key (one).
        pet_key: datalist key of the optional PET entry.
        valid_key: key written with the float flags ``[CT valid, PET valid]``.
        min_overlap: see :class:`~scripts.transforms.LoadPetCt`.
        grid_tolerance: see :class:`~scripts.transforms.LoadPetCt`.
        check_plausibility: see :class:`~scripts.transforms.LoadPetCt`; CT-only studies get the CT rules.
        allow_missing_keys: do not raise when the image key is absent.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        pet_key: str = PET_KEY,
        valid_key: str = VALID_KEY,
        min_overlap: float = 0.5,
        grid_tolerance: float = 0.01,
        check_plausibility: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError(f"LoadPretrainingStudyd loads one image key, got {list(self.keys)}")
        self.pet_key, self.valid_key = pet_key, valid_key
        self.check_plausibility = check_plausibility
        self.loader = LoadPetCt(min_overlap, grid_tolerance, check_plausibility)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Replace the study entry by the loaded image, add the flags, drop the ``pet`` entry."""
        d = dict(data)
        has_pet_entry = self.pet_key in d
        pet = d.pop(self.pet_key, None)
        for key in self.key_iterator(d):
            entry = d[key]
            if has_pet_entry and pet is None:
                if not isinstance(entry, (str, bytes)) and not hasattr(entry, "__fspath__"):
                    raise InputDataError(str(entry), f"a CT-only study ({self.pet_key!r}: null) needs one CT file")
                d[key] = load_ct_only(entry, self.check_plausibility)
                valid = torch.ones(len(CHANNEL_NAMES))
                valid[PET_CHANNEL] = 0.0
            else:
                d[key] = self.loader([entry, pet] if pet is not None else entry)
                valid = torch.ones(len(CHANNEL_NAMES))
            d[self.valid_key] = valid
        return d
