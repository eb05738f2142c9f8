# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Turn what a user points inference at into MONAI data items, and name each study's output.

Accepted inputs (``find_inference_items``):

- an nnU-Net dataset folder (``imagesTs`` is used when present, else ``imagesTr``) or an images folder
  itself: ``<case>_0000.nii.gz`` (CT) + ``<case>_0001.nii.gz`` (PET);
- an autoPET release folder: study folders holding ``CTres.nii.gz`` + ``SUV.nii.gz``;
- a datalist JSON (MONAI decathlon style, paths relative to the JSON's folder);
- a single study: one such study folder, one CT file (its PET partner is found by the loader), or one
  2-channel file.

Items are ``{"image": [ct, pet] | path, "case": name}``, plus ``"label"`` where a label file is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai.data import load_decathlon_datalist
from scripts.data.file_layout import (
    NNUNET_CT_SUFFIX,
    NNUNET_PET_SUFFIX,
    RELEASE_CT_FILE,
    RELEASE_LABEL_FILE,
    RELEASE_PET_FILE,
    safe_name,
    strip_nifti_suffix,
)
from scripts.data.pet_ct_files import find_pet_partner
from scripts.errors import InputDataError


def study_name(image_path: str | Path) -> str:
    """The output name of a study from its CT (or 2-channel) file path.

    ``.../<case>_0000.nii.gz`` -> ``<case>``; ``.../<patient>/<study>/CTres.nii.gz`` -> ``<patient>_<study>``;
    anything else -> the file name without its NIfTI suffix.
    """
    path = Path(image_path)
    stem = strip_nifti_suffix(path.name)
    if path.name == RELEASE_CT_FILE:
        return safe_name(f"{path.parent.parent.name}_{path.parent.name}")
    if stem.endswith(NNUNET_CT_SUFFIX):
        return stem[: -len(NNUNET_CT_SUFFIX)]
    return stem


def ct_and_pet_paths(item: Mapping[str, Any]) -> tuple[str, str]:
    """The CT and PET files of a data item: ``[ct, pet]``, or one CT path whose PET partner is found by name.

    Raises:
        InputDataError: the item holds one 2-channel file (no separate PET file) or no PET partner exists.
    """
    image = item.get("image")
    if isinstance(image, (list, tuple)) and len(image) == 2:
        return str(image[0]), str(image[1])
    if isinstance(image, (str, Path)):
        return str(image), str(find_pet_partner(image))
    raise InputDataError(str(image), "expected [ct, pet] files or one CT file with a PET partner")


def output_name_formatter(metadict: dict, saver: Any) -> dict:
    """``SaveImage(output_name_formatter=...)`` hook: name each saved mask after its study."""
    source = metadict.get("filename_or_obj", "")
    if isinstance(source, (list, tuple)):
        source = source[0]
    return {"subject": study_name(str(source))}


def _nnunet_items(images_dir: Path, labels_dir: Path | None, strict: bool) -> list[dict]:
    items = []
    for ct in sorted(images_dir.glob(f"*{NNUNET_CT_SUFFIX}.nii.gz")):
        case = study_name(ct)
        pet = ct.with_name(f"{case}{NNUNET_PET_SUFFIX}.nii.gz")
        if strict and not pet.is_file():
            raise InputDataError(pet, f"PET channel of case {case!r} is missing")
        item: dict = {"image": [str(ct), str(pet)], "case": case}
        if labels_dir is not None and (labels_dir / f"{case}.nii.gz").is_file():
            item["label"] = str(labels_dir / f"{case}.nii.gz")
        items.append(item)
    return items


def _release_item(study_dir: Path, strict: bool) -> dict:
    pet = study_dir / RELEASE_PET_FILE
    if strict and not pet.is_file():
        raise InputDataError(pet, "PET (SUV.nii.gz) of this study is missing")
    ct = study_dir / RELEASE_CT_FILE
    item: dict = {"image": [str(ct), str(pet)], "case": study_name(ct)}
    if (study_dir / RELEASE_LABEL_FILE).is_file():
        item["label"] = str(study_dir / RELEASE_LABEL_FILE)
    return item


def find_inference_items(source: str | Path, datalist_key: str = "testing", strict: bool = True) -> list[dict]:
    """Data items for every study found at ``source`` (see the module docstring for the accepted forms).

    With ``strict`` a study whose PET file is missing is an error; without, its item is kept (naming the absent
    file) so that a batch can report it among its other broken studies and go on with the rest.
    """
    path = Path(source)
    if not path.exists():
        raise InputDataError(path, "input not found")
    if path.is_file() and path.suffix == ".json":
        items = load_decathlon_datalist(
            str(path), is_segmentation=True, data_list_key=datalist_key, base_dir=path.parent
        )
        for item in items:
            image = item["image"]
            item.setdefault("case", study_name(image[0] if isinstance(image, (list, tuple)) else image))
        return items
    if path.is_file():
        return [{"image": str(path), "case": study_name(path)}]
    if (path / RELEASE_CT_FILE).is_file():
        return [_release_item(path, strict)]
    for images, labels in (("imagesTs", "labelsTs"), ("imagesTr", "labelsTr")):
        if (path / images).is_dir():
            items = _nnunet_items(path / images, path / labels, strict)
            if items:
                return items
    items = _nnunet_items(path, None, strict) or [
        _release_item(ct.parent, strict) for ct in sorted(path.rglob(RELEASE_CT_FILE))
    ]
    if not items:
        raise InputDataError(
            path,
            f"no studies found (expected *{NNUNET_CT_SUFFIX}.nii.gz files or study folders with {RELEASE_CT_FILE})",
        )
    return items
