# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Per-fold datalists (MONAI decathlon style) for an nnU-Net raw dataset, as the bundle configs read them.

Paths are relative to the dataset folder, so
``monai.data.load_decathlon_datalist(path, data_list_key="training", base_dir=dataset_dir)`` resolves them.
An item is ``{"image": [CT, PET], "label": mask, "case": id, "patient": id}``; ``LoadImaged`` stacks the two
image files into channels CT = 0, PET = 1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scripts.atomic_io import write_json
from scripts.data.file_layout import NNUNET_CT_SUFFIX, NNUNET_PET_SUFFIX
from scripts.data.splits import Fold, patient_of_case

CHANNEL_SUFFIXES = (NNUNET_CT_SUFFIX, NNUNET_PET_SUFFIX)  # CT, PET: nnU-Net's channel numbering
ALL_DATALIST = "datalist_all.json"
_FOLD_FILE = re.compile(r"datalist_fold(\d+)\.json")


def fold_datalist_name(fold: int) -> str:
    """File name of fold ``fold``'s datalist, e.g. ``datalist_fold0.json``."""
    return f"datalist_fold{fold}.json"


def fold_datalist_path(dataset_dir: str | os.PathLike, fold: int) -> str:
    """Path of fold ``fold``'s datalist in a prepared dataset (what the configs' ``datalist`` is)."""
    return os.path.join(dataset_dir, fold_datalist_name(fold))


def datalist_item(
    case: str, patient: str, file_ending: str = ".nii.gz", images_folder: str = "imagesTr", labelled: bool = True
) -> dict[str, Any]:
    """One datalist entry: the case's CT and PET files, its label (``labelsTr``) when ``labelled``, ids.

    Args:
        case: the nnU-Net case id.
        patient: the case's patient id.
        file_ending: the dataset's file ending (``dataset.json`` ``file_ending``).
        images_folder: ``imagesTr`` or ``imagesTs``.
        labelled: add ``"label": "labelsTr/<case><file_ending>"``.
    """
    item: dict[str, Any] = {"image": [f"{images_folder}/{case}{suffix}{file_ending}" for suffix in CHANNEL_SUFFIXES]}
    if labelled:
        item["label"] = f"labelsTr/{case}{file_ending}"
    item["case"] = case
    item["patient"] = patient
    return item


def fold_datalist(fold: Fold, patients: Mapping[str, str], file_ending: str = ".nii.gz") -> dict[str, list]:
    """``{"training": [...], "validation": [...]}`` for one fold of ``splits_final.json``."""
    return {
        "training": [datalist_item(case, patients[case], file_ending) for case in fold["train"]],
        "validation": [datalist_item(case, patients[case], file_ending) for case in fold["val"]],
    }


def all_datalist(
    patients: Mapping[str, str], test_cases: Sequence[str] = (), file_ending: str = ".nii.gz"
) -> dict[str, list]:
    """Every labelled case under ``"training"``, plus the ``imagesTs`` cases under ``"testing"`` if any."""
    datalist: dict[str, list] = {"training": [datalist_item(c, patients[c], file_ending) for c in sorted(patients)]}
    if test_cases:
        datalist["testing"] = [
            datalist_item(case, patient_of_case(case), file_ending, images_folder="imagesTs", labelled=False)
            for case in sorted(test_cases)
        ]
    return datalist


def write_datalists(
    dataset_dir: str | os.PathLike,
    splits: Sequence[Fold],
    patients: Mapping[str, str],
    test_cases: Sequence[str] = (),
    file_ending: str = ".nii.gz",
) -> list[Path]:
    """Write ``datalist_fold{k}.json`` for every fold and ``datalist_all.json`` into ``dataset_dir``.

    Args:
        dataset_dir: the nnU-Net raw dataset folder; the paths inside the files are relative to it. Fold
            datalists left from an earlier split with more folds are removed.
        splits: ``splits_final.json`` content.
        patients: case id -> patient id for every labelled case.
        test_cases: case ids found in ``imagesTs``.
        file_ending: the dataset's file ending.

    Returns:
        The files written, folds first.
    """
    folder = Path(dataset_dir)
    written = [
        write_json(fold_datalist(fold, patients, file_ending), folder / fold_datalist_name(index))
        for index, fold in enumerate(splits)
    ]
    written.append(write_json(all_datalist(patients, test_cases, file_ending), folder / ALL_DATALIST))
    for stale in folder.glob("datalist_fold*.json"):
        match = _FOLD_FILE.fullmatch(stale.name)
        if match and int(match.group(1)) >= len(splits):
            stale.unlink()
    return written
