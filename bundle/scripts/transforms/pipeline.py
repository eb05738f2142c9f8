# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The deterministic PET/CT preprocessing shared by training, pretraining and inference.

One function builds the chain so that ``train.json``, ``pretrain.json`` and ``inference.json`` cannot drift apart:
each of those configs must stand alone (MONAI Label reads ``inference.json`` and ``train.json`` by themselves, from
its own working directory), so they share this code instead of a JSON file.
"""

from collections.abc import Sequence

from monai.transforms import EnsureTyped, MapTransform, Orientationd
from scripts.data.pet_ct_files import CT_CHANNEL, PET_CHANNEL
from scripts.transforms.body_crop import BODY_THRESHOLD_HU, CropBodyd
from scripts.transforms.intensity import DEFAULT_NORMALIZATION, ClipNormalized
from scripts.transforms.pet_ct_loading import LoadPetCtd
from scripts.transforms.spacing import MetaSafeSpacingd

PAPER_SPACING_MM = (2.036, 2.036, 3.0)


def _window(channel: int) -> tuple[tuple[float, float], tuple[float, float]]:
    n = DEFAULT_NORMALIZATION[channel]
    return (n.lower, n.upper), (n.mean, n.std)


CT_WINDOW_HU, CT_MEAN_STD = _window(CT_CHANNEL)
PET_WINDOW_SUV, PET_MEAN_STD = _window(PET_CHANNEL)


def petct_preprocessing(
    loader: MapTransform | None = None,
    image_key: str = "image",
    label_key: str | None = "label",
    pixdim: Sequence[float] = PAPER_SPACING_MM,
    body_threshold_hu: float = BODY_THRESHOLD_HU,
    ct_window_hu: Sequence[float] = CT_WINDOW_HU,
    ct_mean_std: Sequence[float] = CT_MEAN_STD,
    pet_window_suv: Sequence[float] = PET_WINDOW_SUV,
    pet_mean_std: Sequence[float] = PET_MEAN_STD,
    check_plausibility: bool = True,
) -> list[MapTransform]:
    """Return load -> RAS -> resample -> body crop -> CT and PET clip + z-score -> tensors, as a list of transforms.

    Every step is invertible, so ``Invertd(transform=Compose(<this list>))`` puts a prediction back on the CT grid.

    Args:
        loader: the loading transform; default ``LoadPetCtd(image_key, label_key)`` (CT channel 0, PET channel 1).
            Pretraining passes ``LoadPretrainingStudyd``, which also accepts CT-only studies.
        image_key: the 2-channel image key.
        label_key: the label key, or None; a label is resampled with nearest neighbours and may be missing.
        pixdim: target voxel size in mm.
        body_threshold_hu: CT threshold of the body crop.
        ct_window_hu: CT clip window (HU); ``ct_mean_std`` the z-score statistics after clipping.
        ct_mean_std: CT mean and standard deviation (HU).
        pet_window_suv: PET clip window (SUV).
        pet_mean_std: PET mean and standard deviation (SUV).
        check_plausibility: the default loader rejects a CT that does not look like HU, a PET not like SUV and
            voxel sizes no scanner writes (:mod:`scripts.data.plausibility`); False for unusual data.
    """
    keys = [image_key] if label_key is None else [image_key, label_key]
    modes = ["bilinear", "nearest"][: len(keys)]
    if loader is None:
        loader = LoadPetCtd(keys=image_key, label_key=label_key, check_plausibility=check_plausibility)
    return [
        loader,
        Orientationd(keys=keys, axcodes="RAS", allow_missing_keys=True),
        MetaSafeSpacingd(keys=keys, pixdim=pixdim, mode=modes, allow_missing_keys=True),
        CropBodyd(keys=keys, source_key=image_key, threshold_hu=body_threshold_hu, allow_missing_keys=True),
        _clip_normalize(image_key, CT_CHANNEL, ct_window_hu, ct_mean_std),
        _clip_normalize(image_key, PET_CHANNEL, pet_window_suv, pet_mean_std),
        EnsureTyped(keys=keys, allow_missing_keys=True),
    ]


def _clip_normalize(key: str, channel: int, window: Sequence[float], mean_std: Sequence[float]) -> ClipNormalized:
    lower, upper = window
    mean, std = mean_std
    return ClipNormalized(keys=key, channel=channel, lower=lower, upper=upper, mean=mean, std=std)
