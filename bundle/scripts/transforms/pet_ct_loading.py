# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Load a PET/CT study as one 2-channel image on the CT grid (channel 0 CT in HU, channel 1 PET in SUV).

The result looks exactly like the output of ``LoadImaged`` + ``EnsureChannelFirstd`` on the CT file (affine,
original affine, ``filename_or_obj`` = the CT path), so ``Orientationd``, ``Spacingd``, ``Invertd`` and
``SaveImaged`` downstream treat it as the CT, and a prediction inverted through them lands on the CT grid.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from scripts.data.grids import GRID_TOLERANCE_VOXELS, resample_onto_grid, same_grid, voxel_spacing
from scripts.data.pet_ct_files import CHANNEL_NAMES, PET_FILENAME_KEY, PathLike, find_pet_partner, squeeze_trailing
from scripts.data.plausibility import check_study_plausibility
from scripts.data.volume_checks import check_affine, check_image, check_label, check_overlap
from scripts.data.volumes import read_meta_volume
from scripts.errors import InputDataError, for_web_client

StudyEntry = PathLike | Sequence[PathLike]


def _grid_summary(affine: np.ndarray, shape: Sequence[int]) -> str:
    spacing = ", ".join(f"{s:.3f}" for s in voxel_spacing(affine))
    origin = ", ".join(f"{o:.1f}" for o in np.asarray(affine)[:3, 3])
    return f"shape {tuple(int(s) for s in shape)}, spacing ({spacing}) mm, origin ({origin}) mm"


def _checked_image(volume: MetaTensor, path: PathLike) -> tuple[MetaTensor, tuple[int, int, int]]:
    """Check a CT or PET volume (3D, not empty, finite, usable affine); return it and its spatial shape."""
    volume = squeeze_trailing(volume)
    shape = check_image(volume.numpy(), path)
    check_affine(volume.affine.numpy(), path)
    return volume, shape


def _channel_first(volume: MetaTensor, meta: dict[str, Any], affine: torch.Tensor) -> MetaTensor:
    """Wrap [C, X, Y, Z] data with a copy of ``meta`` marked channel-first, so ``EnsureChannelFirstd`` is a no-op."""
    meta = {key: value for key, value in meta.items() if key != "affine"}  # the affine comes from ``affine``
    meta["original_channel_dim"] = 0
    return MetaTensor(volume, affine=affine.clone(), meta=meta)


class LoadPetCt(Transform):
    """Load a PET/CT study into a [2, X, Y, Z] float32 ``MetaTensor`` on the CT grid (CT = 0, PET = 1).

    Accepted study entries:

    - ``[ct_path, pet_path]`` (list or tuple);
    - one 2-channel NIfTI file (4D, two volumes: CT then PET);
    - one CT file whose PET partner is found by name: ``<case>_0000.nii.gz`` -> ``<case>_0001.nii.gz``
      (nnU-Net) or ``CTres.nii.gz`` -> ``SUV.nii.gz`` (autoPET release).

    A PET on another grid is resampled trilinearly onto the CT grid (0 outside its field of view).

    Args:
        min_overlap: smallest fraction of the CT extent, per axis, that the PET must cover; below it the pair
            is rejected as not one study.
        grid_tolerance: largest corner-voxel displacement, as a fraction of the smallest CT voxel size, for
            which two grids still count as the same (no resampling).
        check_plausibility: also require the CT to look like HU, the PET like SUV and the voxel sizes like a
            scanner's (:mod:`scripts.data.plausibility`); turn off only for unusual data.

    Raises:
        InputDataError: a file is missing, unreadable, not 3D, empty, non-finite, implausible, or the PET does not
            overlap the CT; the message names the file.
    """

    def __init__(
        self, min_overlap: float = 0.5, grid_tolerance: float = GRID_TOLERANCE_VOXELS, check_plausibility: bool = True
    ) -> None:
        if not 0.0 < min_overlap <= 1.0:
            raise ValueError(f"min_overlap must be in (0, 1], got {min_overlap}")
        if grid_tolerance < 0.0:
            raise ValueError(f"grid_tolerance must be >= 0, got {grid_tolerance}")
        self.min_overlap = min_overlap
        self.grid_tolerance = grid_tolerance
        self.check_plausibility = check_plausibility

    def __call__(self, entry: StudyEntry) -> MetaTensor:
        """Load the study named by ``entry`` (see the class docstring for the accepted forms)."""
        if isinstance(entry, (list, tuple)):
            if len(entry) != 2:
                raise InputDataError(
                    ", ".join(str(p) for p in entry), f"expected [ct, pet] (2 files), got {len(entry)} file(s)"
                )
            ct_path, pet_path = entry
            ct, ct_shape = _checked_image(read_meta_volume(ct_path), ct_path)
            return self._combine(ct_path, ct, ct_shape, pet_path)
        if not isinstance(entry, (str, Path)):
            raise InputDataError(str(entry), f"expected a file path or [ct, pet], got a {type(entry).__name__}")
        volume = squeeze_trailing(read_meta_volume(entry))
        if volume.ndim == 4:
            return self._load_two_channel_file(entry, volume)
        ct, ct_shape = _checked_image(volume, entry)
        return self._combine(entry, ct, ct_shape, find_pet_partner(entry))

    def _load_two_channel_file(self, path: PathLike, volume: MetaTensor) -> MetaTensor:
        if volume.shape[-1] != 2:
            raise InputDataError(
                path, f"a 4D file with {volume.shape[-1]} volumes (shape {tuple(volume.shape)}); expected 2 (CT, PET)"
            )
        check_affine(volume.affine.numpy(), path)
        channels = volume.permute(3, 0, 1, 2)
        for index, name in enumerate(CHANNEL_NAMES):
            try:
                check_image(channels[index].numpy(), path)
            except InputDataError as error:
                raise InputDataError(path, f"{name} volume (channel {index}): {error.problem}") from error
        if self.check_plausibility:
            affine = volume.affine.numpy()
            check_study_plausibility(channels[0].numpy(), affine, path, channels[1].numpy(), affine, path)
        image = _channel_first(channels.as_tensor().contiguous(), volume.meta, volume.affine)
        image.meta[PET_FILENAME_KEY] = str(path)
        return image

    def _combine(
        self, ct_path: PathLike, ct: MetaTensor, ct_shape: tuple[int, int, int], pet_path: PathLike
    ) -> MetaTensor:
        pet, pet_shape = _checked_image(read_meta_volume(pet_path), pet_path)
        ct_affine = ct.affine.numpy()
        pet_affine = pet.affine.numpy()
        on_ct_grid = same_grid(ct_affine, ct_shape, pet_affine, pet_shape, self.grid_tolerance)
        if not on_ct_grid:
            check_overlap(ct_affine, ct_shape, pet_affine, pet_shape, pet_path, min_fraction=self.min_overlap)
        if self.check_plausibility:
            check_study_plausibility(ct.numpy(), ct_affine, ct_path, pet.numpy(), pet_affine, pet_path)
        if on_ct_grid:
            pet_on_ct = pet.as_tensor().reshape(ct_shape)
        else:
            pet_on_ct = resample_onto_grid(pet.reshape((1, *pet_shape)), ct_affine, ct_shape)[0]
        data = torch.stack([ct.as_tensor().reshape(ct_shape), pet_on_ct]).to(torch.float32)
        image = _channel_first(data, ct.meta, ct.affine)
        image.meta[PET_FILENAME_KEY] = str(pet_path)
        return image


def load_label(path: PathLike, reference: MetaTensor, grid_tolerance: float = GRID_TOLERANCE_VOXELS) -> MetaTensor:
    """Load a lesion mask as a [1, X, Y, Z] float32 ``MetaTensor`` that must lie on ``reference``'s grid.

    Its affine is set to the reference's exactly, so later spatial transforms give both identical grids.

    Raises:
        InputDataError: the file is missing, unreadable, not 3D, has values other than 0/1, or lies on
            another grid than the CT.
    """
    volume = squeeze_trailing(read_meta_volume(path))
    shape = check_label(volume.numpy(), path)
    check_affine(volume.affine.numpy(), path)
    ref_affine, ref_shape = reference.affine.numpy(), tuple(reference.shape[1:])
    label_affine = volume.affine.numpy()
    if not same_grid(ref_affine, ref_shape, label_affine, shape, grid_tolerance):
        ct_name = reference.meta.get("filename_or_obj", "the CT")
        raise InputDataError(
            path,
            f"the label lies on another grid than the CT {ct_name} (label {_grid_summary(label_affine, shape)};"
            f" CT {_grid_summary(ref_affine, ref_shape)}); the label must share the CT grid",
        )
    return _channel_first(volume.as_tensor().reshape((1, *shape)), volume.meta, reference.affine)


class LoadPetCtd(MapTransform):
    """Dictionary version of :class:`LoadPetCt`, which also loads the label (if present) onto the CT grid.

    Each key in ``keys`` holds a study entry (``[ct, pet]``, a 2-channel file, or a CT file with a named PET
    partner) and becomes a [2, X, Y, Z] ``MetaTensor``; ``label_key``, when present and not ``None``, holds a
    mask file on the CT grid and becomes [1, X, Y, Z]. Only plain arguments, so a JSON config can build it.
    Inside a web server (MONAI Label) a bad study raises an error the server returns to the client
    (:func:`scripts.errors.for_web_client`).

    Args:
        keys: the image key(s), usually ``"image"``.
        label_key: key of the lesion mask file, or ``None`` to never load a label. Checked against the first key.
        min_overlap: see :class:`LoadPetCt`.
        grid_tolerance: see :class:`LoadPetCt`; also used for the label-grid check.
        check_plausibility: see :class:`LoadPetCt`.
        allow_missing_keys: do not raise when an image key is absent.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        label_key: str | None = "label",
        min_overlap: float = 0.5,
        grid_tolerance: float = GRID_TOLERANCE_VOXELS,
        check_plausibility: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.label_key = label_key
        self.grid_tolerance = grid_tolerance
        self.loader = LoadPetCt(min_overlap, grid_tolerance, check_plausibility)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Replace the study entries (and the label path) in ``data`` by loaded, checked volumes."""
        d = dict(data)
        reference = None
        try:
            for key in self.key_iterator(d):
                d[key] = self.loader(d[key])
                reference = d[key] if reference is None else reference
            if self.label_key is not None and d.get(self.label_key) is not None and reference is not None:
                d[self.label_key] = load_label(d[self.label_key], reference, self.grid_tolerance)
        except InputDataError as error:
            raise for_web_client(error) from error
        return d
