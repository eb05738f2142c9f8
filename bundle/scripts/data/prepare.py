# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Prepare PET/CT data for training: autoPET release -> nnU-Net raw layout, patient-grouped folds, datalists.

Run from ``bundle/``::

    python -m scripts.data.prepare --src RELEASE --dst DatasetXXX_autoPET [--folds 5] [--seed 0] [--workers 8]
    python -m scripts.data.prepare --src DatasetXXX_autoPET          # an nnU-Net raw dataset: add splits in place

Every study is read and checked before anything final is written; a converted dataset is built in a temporary
sibling folder and renamed into place only when complete, so a failure leaves no half-written dataset and never
damages an existing one. See ``docs/data.md``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from scripts.atomic_io import atomic_path, check_writable_folder, remove_stale_staging, save_nifti, write_json
from scripts.data.datalists import write_datalists
from scripts.data.grids import resample_onto_grid
from scripts.data.preparation_outcome import PreparedDataset, count_of
from scripts.data.splits import (
    DEFAULT_FOLDS,
    PATIENTS_FILE,
    SPLITS_FILE,
    Fold,
    check_splits,
    make_patient_folds,
    patients_split_across_folds,
    read_json,
)
from scripts.data.studies import (
    CT_CHANNEL,
    PET_CHANNEL,
    Study,
    find_nnunet_dataset,
    find_release_studies,
    is_nnunet_dataset,
)
from scripts.data.study_checks import StudyCheck, check_all, parallel_map
from scripts.data.volumes import read_volume
from scripts.errors import InputDataError, say

FILE_ENDING = ".nii.gz"
CHANNEL_NAMES = {"0": "CT", "1": "PET"}
LABELS = {"background": 0, "lesion": 1}

Log = Callable[[str], None]


def dataset_json(name: str, num_training: int) -> dict[str, Any]:
    """nnU-Net v2 ``dataset.json`` for a converted dataset (channel 0 = CT, 1 = PET; label 1 = lesion)."""
    return {
        "name": name,
        "description": (
            "Whole-body PET/CT lesion segmentation in the autoPET layout, converted by scripts.data.prepare: "
            "channel 0 = CT on the PET grid (HU), channel 1 = PET (SUV), label 1 = lesion."
        ),
        "channel_names": dict(CHANNEL_NAMES),
        "labels": dict(LABELS),
        "numTraining": num_training,
        "file_ending": FILE_ENDING,
    }


def resample_pet_onto_ct(pet_path: Path, ct_path: Path, out_path: Path) -> Path:
    """Resample a PET volume trilinearly onto the CT's voxel grid (0 outside the PET field of view), as float32.

    The same resampling (:func:`scripts.data.grids.resample_onto_grid`) as the loader applies on the fly.
    """
    ct, pet = read_volume(ct_path, "CT"), read_volume(pet_path, "PET", dtype=np.float32)
    source = MetaTensor(torch.from_numpy(pet.array.reshape((1, *pet.spatial_shape))), affine=pet.affine)
    resampled = resample_onto_grid(source, ct.affine, ct.spatial_shape)[0].numpy()
    return save_nifti(resampled, ct.affine, out_path)


def _convert_study(pair: tuple[Study, StudyCheck], output: Path) -> None:
    study, check = pair
    images = output / "imagesTr"
    shutil.copyfile(study.ct, images / f"{study.case}_{CT_CHANNEL}{FILE_ENDING}")
    pet_out = images / f"{study.case}_{PET_CHANNEL}{FILE_ENDING}"
    if check.pet_on_ct_grid:
        shutil.copyfile(study.pet, pet_out)
    else:
        resample_pet_onto_ct(study.pet, study.ct, pet_out)
    if study.label is not None:  # always so for a release study
        shutil.copyfile(study.label, output / "labelsTr" / f"{study.case}{FILE_ENDING}")


def _check_destination(src: Path, dst: Path, overwrite: bool) -> None:
    if dst.exists() and not dst.is_dir():
        raise InputDataError(dst, "exists and is not a folder")
    src_real, dst_real = src.resolve(), dst.resolve()
    if dst_real == src_real or dst_real.is_relative_to(src_real) or src_real.is_relative_to(dst_real):
        raise InputDataError(dst, f"must lie outside --src {src} and not contain it")
    if dst.is_dir() and any(dst.iterdir()) and not overwrite:
        raise InputDataError(
            dst, "exists and is not empty; pass --overwrite to replace it (only once the new dataset is complete)"
        )
    check_writable_folder(dst.parent if dst.exists() else dst, "the destination")  # the dataset is built beside it


def _folds(patients: dict[str, str], n_folds: int | None, seed: int, where: Path) -> list[Fold]:
    if n_folds is None:  # the default: 5 folds, or one per patient when there are 2-4 patients
        n_folds = min(DEFAULT_FOLDS, max(2, len(set(patients.values()))))
    try:
        return make_patient_folds(patients, n_folds, seed)
    except ValueError as error:
        raise InputDataError(where, str(error)) from error


def _convert_release(
    src: Path,
    dst: Path,
    n_folds: int | None,
    seed: int,
    workers: int,
    overwrite: bool,
    name: str | None,
    log: Log,
    check_plausibility: bool,
) -> PreparedDataset:
    _check_destination(src, dst, overwrite)
    remove_stale_staging(dst.parent, dst.name, log)
    studies = find_release_studies(src)
    patients = {study.case: study.patient for study in studies}
    splits = _folds(patients, n_folds, seed, src)
    checks = check_all(studies, True, workers, log, check_plausibility)
    with atomic_path(dst) as building:
        (building / "imagesTr").mkdir(parents=True)
        (building / "labelsTr").mkdir()
        parallel_map(
            partial(_convert_study, output=building), list(zip(studies, checks, strict=True)), workers, log, "wrote"
        )
        write_json(dataset_json(name or dst.name, len(studies)), building / "dataset.json")
        write_json(patients, building / PATIENTS_FILE)
        write_json(splits, building / SPLITS_FILE)
        write_datalists(building, splits, patients, file_ending=FILE_ENDING)
    return PreparedDataset(
        folder=dst,
        converted=True,
        patients=patients,
        lesion_voxels={check.case: check.lesion_voxels for check in checks},
        resampled=[check.case for check in checks if not check.pet_on_ct_grid],
        splits=splits,
        splits_from=f"by patient, seed {seed}",
        test_cases=[],
    )


def _prepare_in_place(
    folder: Path, n_folds: int | None, seed: int, workers: int, log: Log, check_plausibility: bool
) -> PreparedDataset:
    remove_stale_staging(folder, None, log)
    dataset = find_nnunet_dataset(folder)
    for note in dataset.notes:
        log(f"note: {note}")
    patients = {study.case: study.patient for study in dataset.training}
    splits_path = folder / SPLITS_FILE
    if splits_path.exists():
        splits = check_splits(read_json(splits_path), patients, splits_path)
        if n_folds is not None and n_folds != len(splits):
            raise InputDataError(
                splits_path, f"has {len(splits)} folds, not the {n_folds} asked for; remove it to make a new split"
            )
        split_patients = patients_split_across_folds(splits, patients)
        if split_patients:
            log(f"warning: {SPLITS_FILE} validates {count_of(len(split_patients), 'patient')} in more than one fold")
        splits_from = f"existing {SPLITS_FILE}"
    else:
        splits = _folds(patients, n_folds, seed, folder)
        splits_from = f"by patient, seed {seed}"
    checks = check_all(dataset.training + dataset.testing, False, workers, log, check_plausibility)
    if not dataset.patients_recorded:
        write_json(patients, folder / PATIENTS_FILE)
    if not splits_path.exists():
        write_json(splits, splits_path)
    test_cases = [study.case for study in dataset.testing]
    write_datalists(folder, splits, patients, test_cases, dataset.file_ending)
    return PreparedDataset(
        folder=folder,
        converted=False,
        patients=patients,
        lesion_voxels={check.case: check.lesion_voxels for check in checks if check.case in patients},
        resampled=[],
        splits=splits,
        splits_from=splits_from,
        test_cases=test_cases,
    )


def prepare_dataset(
    src: str | Path,
    dst: str | Path | None = None,
    *,
    n_folds: int | None = None,
    seed: int = 0,
    workers: int = 1,
    overwrite: bool = False,
    name: str | None = None,
    log: Log = say,
    check_plausibility: bool = True,
) -> PreparedDataset:
    """Turn ``src`` into an nnU-Net raw dataset with patient-grouped folds and per-fold datalists.

    An autoPET release folder (``<patient>/<study>/`` or ``<study>/`` folders of ``CTres.nii.gz``, ``SUV.nii.gz``,
    ``SEG.nii.gz``) is converted into ``dst``: CT, label and same-grid PET copied byte for byte, other PET resampled
    onto the CT grid. An nnU-Net raw dataset (``dataset.json`` + ``imagesTr`` + ``labelsTr``) is checked and
    prepared in place: ``patients.json`` and ``splits_final.json`` are added when absent (an existing split is
    honoured) and the datalists are (re)written; its images are never touched.

    Args:
        src: the release folder or nnU-Net raw dataset.
        dst: the dataset folder to create (release input); None or ``src`` for an nnU-Net dataset.
        n_folds: folds of a new split (default 5); if given, an existing split must have as many.
        seed: seed of a new split.
        workers: processes that read and write studies.
        overwrite: replace a non-empty ``dst`` (only once the new dataset is complete).
        name: ``dataset.json`` name of a converted dataset (default: the ``dst`` folder name).
        log: where progress, notes and the list of bad studies go.
        check_plausibility: also reject studies whose CT does not look like HU, PET not like SUV, or voxel sizes
            no scanner writes (:mod:`scripts.data.plausibility`); False for unusual data.

    Returns:
        What was prepared; ``.summary()`` gives the console lines.

    Raises:
        InputDataError: for bad input, naming the file and the problem; nothing final is written then.
    """
    src = Path(src)
    if not src.is_dir():
        raise InputDataError(src, "not a folder")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if is_nnunet_dataset(src):
        if dst is not None and Path(dst).resolve() != src.resolve():
            raise InputDataError(dst, "an nnU-Net raw dataset is prepared in place: leave --dst out or give --src")
        return _prepare_in_place(src, n_folds, seed, workers, log, check_plausibility)
    if dst is None:
        raise InputDataError(src, "an autoPET release folder is converted into a new folder: give --dst")
    return _convert_release(src, Path(dst), n_folds, seed, workers, overwrite, name, log, check_plausibility)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m scripts.data.prepare``."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.data.prepare",
        description="autoPET release -> nnU-Net raw dataset with patient-grouped folds and MONAI datalists "
        "(an nnU-Net raw dataset is prepared in place).",
    )
    parser.add_argument("--src", required=True, type=Path, help="autoPET release folder or nnU-Net raw dataset")
    parser.add_argument("--dst", type=Path, help="dataset folder to create (default for an nnU-Net dataset: --src)")
    folds_help = f"folds of a new split (default {DEFAULT_FOLDS}, or one per patient below that)"
    parser.add_argument("--folds", type=int, default=None, help=folds_help)
    parser.add_argument("--seed", type=int, default=0, help="seed of a new split (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="processes reading and writing studies (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --dst once the new one is done")
    parser.add_argument("--name", help="dataset.json name (default: the --dst folder name)")
    parser.add_argument(
        "--no-plausibility-check",
        dest="check_plausibility",
        action="store_false",
        help="accept studies whose CT does not look like HU, PET not like SUV or voxel sizes no scanner writes "
        "(for unusual data; see docs/data.md)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (1 for bad input, with the problem on stderr)."""
    args = build_parser().parse_args(argv)
    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        prepared = prepare_dataset(
            args.src,
            args.dst,
            n_folds=args.folds,
            seed=args.seed,
            workers=args.workers,
            overwrite=args.overwrite,
            name=args.name,
            check_plausibility=args.check_plausibility,
        )
    except InputDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    say(prepared.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
