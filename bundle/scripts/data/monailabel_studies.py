# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Build a MONAI Label studies folder from an autoPET release or an nnU-Net raw dataset.

MONAI Label's ``LocalDatastore`` lists the NIfTI files at the top of ``--studies`` as studies and reads training
labels from ``labels/final/<study>``. So each study gets exactly one listed file, its CT; the PET partner sits in
``pet/``, where the datastore does not look and the bundle's loader does::

    STUDIES/<study>.nii.gz               CT (HU): the study MONAI Label lists and sends to the bundle
    STUDIES/pet/<study>.nii.gz           PET (SUV): found by the loader, never listed
    STUDIES/labels/final/<study>.nii.gz  lesion mask (labelled studies only): what the train task reads

Run from ``bundle/``::

    python -m scripts.data.monailabel_studies --src AUTOPET_RELEASE_OR_NNUNET_DATASET --dst STUDIES [--copy]

Files are hard-linked (no extra disk space; copied where ``--dst`` is on another file system, or with
``--copy``). Only names are checked here; the loader checks the volumes when a study is opened. The folder is
built under a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.atomic_io import atomic_path
from scripts.data.file_layout import NIFTI_SUFFIXES, STUDIES_PET_FOLDER
from scripts.data.studies import Study, find_nnunet_dataset, find_release_studies, is_nnunet_dataset
from scripts.errors import InputDataError

LABEL_FOLDER = Path("labels") / "final"  # LocalDatastore.datalist(): the "final" label tag


@dataclass(frozen=True)
class StudiesFolder:
    """What :func:`build_studies_folder` wrote."""

    folder: Path
    studies: list[str]
    labelled: list[str]
    linked: bool  # True: hard links; False: copies

    def summary(self) -> str:
        """Two lines for the console: what was written and the server command that serves it."""
        how = "hard-linked" if self.linked else "copied"
        return (
            f"{self.folder}: {len(self.studies)} studies ({len(self.labelled)} labelled), files {how}\n"
            f"serve it: monailabel start_server --app apps/monaibundle --studies {self.folder} "
            "--conf models petct_lesion_segmentation --conf zoo_source github --conf sam2 false"
        )


def _suffix(path: Path) -> str:
    return next((s for s in NIFTI_SUFFIXES if path.name.endswith(s)), path.suffix)


def find_source_studies(src: str | os.PathLike) -> list[Study]:
    """The studies of an autoPET release or an nnU-Net raw dataset (imagesTr and imagesTs), names checked.

    Raises:
        InputDataError: ``src`` is neither, or a study id occurs twice.
    """
    src = Path(src)
    if is_nnunet_dataset(src):
        dataset = find_nnunet_dataset(src)
        studies = dataset.training + dataset.testing
    else:
        studies = find_release_studies(src)
    seen: set[str] = set()
    for study in studies:
        if study.case in seen:
            raise InputDataError(study.ct, f"study id {study.case!r} occurs twice (imagesTr and imagesTs?)")
        seen.add(study.case)
    return studies


def _place(source: Path, target: Path, copy: bool) -> bool:
    """Hard-link ``source`` to ``target`` (copy if asked or across file systems); True if linked."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not copy:
        try:
            os.link(source, target)
            return True
        except OSError:
            pass
    shutil.copy2(source, target)
    return False


def _check_destination(src: Path, dst: Path) -> None:
    if dst.exists():
        raise InputDataError(dst, "exists already: give a new folder (MONAI Label keeps its own files there)")
    src_real, dst_real = src.resolve(), dst.resolve()
    if dst_real.is_relative_to(src_real) or src_real.is_relative_to(dst_real):
        raise InputDataError(dst, f"must lie outside --src {src} and not contain it")


def build_studies_folder(src: str | os.PathLike, dst: str | os.PathLike, copy: bool = False) -> StudiesFolder:
    """Write the studies folder ``dst`` (see the module docstring) for every study of ``src``.

    Raises:
        InputDataError: ``src`` holds no usable studies (naming the file at fault), or ``dst`` exists.
    """
    src, dst = Path(src), Path(dst)
    _check_destination(src, dst)
    studies = find_source_studies(src)
    linked = True
    with atomic_path(dst) as tmp:
        for study in studies:
            linked &= _place(study.ct, tmp / f"{study.case}{_suffix(study.ct)}", copy)
            linked &= _place(study.pet, tmp / STUDIES_PET_FOLDER / f"{study.case}{_suffix(study.pet)}", copy)
            if study.label is not None:
                linked &= _place(study.label, tmp / LABEL_FOLDER / f"{study.case}{_suffix(study.label)}", copy)
    labelled = [s.case for s in studies if s.label is not None]
    return StudiesFolder(dst, [s.case for s in studies], labelled, linked)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m scripts.data.monailabel_studies``."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.data.monailabel_studies",
        description="autoPET release or nnU-Net raw dataset -> MONAI Label studies folder (CT listed, PET in pet/, "
        "labels in labels/final/).",
    )
    parser.add_argument("--src", required=True, type=Path, help="autoPET release folder or nnU-Net raw dataset")
    parser.add_argument("--dst", required=True, type=Path, help="studies folder to create (must not exist)")
    parser.add_argument("--copy", action="store_true", help="copy the files instead of hard-linking them")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (1 for bad input, with the problem on stderr)."""
    args = build_parser().parse_args(argv)
    try:
        built = build_studies_folder(args.src, args.dst, copy=args.copy)
    except InputDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(built.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
