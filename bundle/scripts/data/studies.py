# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Find the PET/CT studies of an autoPET release or of an nnU-Net raw dataset, and check each one can be used.

Finding looks at names only (fast, and it names a misspelled file); :func:`scripts.data.study_checks.check_study`
reads the volumes.

- autoPET release: ``SRC/<patient>/<study>/`` (the TCIA-derived release) or ``SRC/<study>/``, each study folder
  holding ``CTres.nii.gz`` (CT resampled to the PET grid), ``SUV.nii.gz`` (PET in SUV) and ``SEG.nii.gz``.
- nnU-Net raw dataset: ``dataset.json``, ``imagesTr/<case>_0000`` (CT) and ``_0001`` (PET), ``labelsTr/<case>``,
  optionally ``imagesTs/`` and our ``patients.json`` (case -> patient).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.data.file_layout import NIFTI_SUFFIXES, RELEASE_CT_FILE, RELEASE_LABEL_FILE, RELEASE_PET_FILE, safe_name
from scripts.data.splits import PATIENTS_FILE, check_patient_map, patient_of_case, read_json
from scripts.errors import InputDataError

CT_FILE, PET_FILE, LABEL_FILE = RELEASE_CT_FILE, RELEASE_PET_FILE, RELEASE_LABEL_FILE
RELEASE_FILES = {CT_FILE: "the CT resampled to the PET grid", PET_FILE: "the PET in SUV", LABEL_FILE: "the lesion mask"}
# Also in TCIA-derived study folders, but not substitutes for the files above: never suggest them as such.
OTHER_RELEASE_FILES = frozenset({"CT.nii.gz", "PET.nii.gz"})
NNUNET_MARKERS = ("dataset.json", "imagesTr", "labelsTr")
NIFTI_ENDINGS = NIFTI_SUFFIXES
CT_CHANNEL, PET_CHANNEL = "0000", "0001"

_CHANNEL_FILE = re.compile(r"(?P<case>.+)_(?P<channel>\d{4})")


@dataclass(frozen=True)
class Study:
    """One PET/CT study: case id, patient id and files (``label`` is None for an unlabelled test case)."""

    case: str
    patient: str
    ct: Path
    pet: Path
    label: Path | None = None


@dataclass(frozen=True)
class NnunetDataset:
    """An nnU-Net raw dataset found on disk (names checked, volumes not yet read)."""

    folder: Path
    file_ending: str
    training: list[Study]
    testing: list[Study]
    patients_recorded: bool  # patients.json was present and used
    notes: list[str] = field(default_factory=list)  # harmless oddities worth printing


def sanitise_case_id(name: str) -> str:
    """File-name-safe case id (see :func:`scripts.data.file_layout.safe_name`)."""
    return safe_name(name)


def unique_case_ids(names: Sequence[str]) -> list[str]:
    """Sanitise ``names`` in order; a later name whose id is taken gets ``_2``, ``_3``, ... (never another's id)."""
    bases = [sanitise_case_id(name) for name in names]
    reserved, taken, ids = set(bases), set(), []
    for base in bases:
        candidate, number = base, 2
        while candidate in taken or (candidate != base and candidate in reserved):
            candidate, number = f"{base}_{number}", number + 1
        taken.add(candidate)
        ids.append(candidate)
    return ids


def closest_name(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate file name most like ``name`` (case-insensitive, difflib ratio >= 0.6), or None."""
    by_lower = {candidate.lower(): candidate for candidate in sorted(candidates)}
    match = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None


def missing_file_error(expected: Path, what: str, candidates: Iterable[str]) -> InputDataError:
    """The error for an expected file that is absent, naming a look-alike file of its folder if there is one."""
    lookalike = closest_name(expected.name, candidates)
    problem = f"missing ({what})"
    if lookalike is not None:
        problem += f"; the folder holds '{lookalike}', which looks like it: rename it if it is that file"
    return InputDataError(expected, problem)


def is_nnunet_dataset(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds ``dataset.json``, ``imagesTr`` and ``labelsTr``; raises when only some exist."""
    folder = Path(folder)
    present = [marker for marker in NNUNET_MARKERS if (folder / marker).exists()]
    if not present:
        return False
    absent = [marker for marker in NNUNET_MARKERS if marker not in present]
    if absent:
        raise InputDataError(
            folder / absent[0],
            f"missing: the folder holds {', '.join(present)}, so it looks like an nnU-Net raw dataset, "
            f"which also needs {', '.join(absent)}",
        )
    return True


def _is_nifti(name: str) -> bool:
    return name.lower().endswith(NIFTI_ENDINGS)


def _visible(folder: Path) -> list[Path]:
    return sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))


def _subfolders(folder: Path) -> list[Path]:
    return [entry for entry in _visible(folder) if entry.is_dir()]


def _nifti_files(folder: Path) -> list[Path]:
    return [entry for entry in _visible(folder) if entry.is_file() and _is_nifti(entry.name)]


def _release_files(folder: Path) -> tuple[Path, Path, Path]:
    names = {entry.name for entry in _visible(folder) if entry.is_file()}
    lookalikes = names - set(RELEASE_FILES) - OTHER_RELEASE_FILES
    for expected, what in RELEASE_FILES.items():
        if expected not in names:
            raise missing_file_error(folder / expected, what, lookalikes)
    return folder / CT_FILE, folder / PET_FILE, folder / LABEL_FILE


def find_release_studies(src: str | os.PathLike) -> list[Study]:
    """Find every study of an autoPET release folder, each with its three files present.

    A folder directly under ``src`` that holds NIfTI files (or nothing at all) is a study; one that holds only
    folders is a patient, each of its folders a study. Case ids are the sanitised ``<patient>_<study>`` (or
    ``<study>``) folder names, made unique. The patient id is the patient folder's name; for a study directly
    under ``src`` it is :func:`scripts.data.splits.patient_of_case` of its case id.

    Args:
        src: the release folder.

    Returns:
        The studies, sorted by folder.

    Raises:
        InputDataError: no study folders, NIfTI files loose in ``src``, or a study missing one of its files
            (naming the file and any look-alike, such as ``Suv.nii.gz`` for ``SUV.nii.gz``).
    """
    src = Path(src)
    if not src.is_dir():
        raise InputDataError(src, "not a folder")
    loose = _nifti_files(src)
    if loose:
        raise InputDataError(
            loose[0], "a NIfTI file directly in --src: point --src at the folder holding one folder per study"
        )
    found: list[tuple[str, str | None, Path]] = []  # (name for the case id, patient folder or None, study folder)
    for top in _subfolders(src):
        inner = _subfolders(top)
        if _nifti_files(top) or not inner:
            found.append((top.name, None, top))
        else:
            found.extend((f"{top.name}_{study.name}", top.name, study) for study in inner)
    if not found:
        raise InputDataError(
            src, f"no study folders: expected SRC/<patient>/<study>/ or SRC/<study>/ holding {', '.join(RELEASE_FILES)}"
        )
    studies = []
    for case, (_, patient, folder) in zip(unique_case_ids([name for name, _, _ in found]), found, strict=True):
        ct, pet, label = _release_files(folder)
        studies.append(Study(case, patient if patient is not None else patient_of_case(case), ct, pet, label))
    return studies


def _split_channel_files(folder: Path, file_ending: str) -> tuple[dict[str, set[str]], list[str]]:
    """Map case -> channel numbers of ``folder``'s image files; also list NIfTI files not named that way."""
    channels: dict[str, set[str]] = {}
    strays: list[str] = []
    for entry in _nifti_files(folder):
        stem = entry.name.removesuffix(file_ending) if entry.name.endswith(file_ending) else None
        match = _CHANNEL_FILE.fullmatch(stem) if stem else None
        if match is None:
            strays.append(entry.name)
        else:
            channels.setdefault(match["case"], set()).add(match["channel"])
    return channels, strays


def _image_studies(
    folder: Path, file_ending: str, patients: dict[str, str] | None, labelled: Collection[str] | None
) -> list[Study]:
    """Studies of ``imagesTr`` (``labelled`` = label case ids) or ``imagesTs`` (``labelled`` None)."""
    channels, strays = _split_channel_files(folder, file_ending)
    cases = sorted(labelled) if labelled is not None else sorted(channels)
    unlabelled = sorted(set(channels) - set(labelled)) if labelled is not None else []
    if unlabelled:
        case = unlabelled[0]
        image = folder / f"{case}_{min(channels[case])}{file_ending}"
        raise InputDataError(image, f"no label file labelsTr/{case}{file_ending} for this image")
    studies = []
    for case in cases:
        paths = []
        for channel, what in ((CT_CHANNEL, "channel 0, CT"), (PET_CHANNEL, "channel 1, PET")):
            path = folder / f"{case}_{channel}{file_ending}"
            if channel not in channels.get(case, ()):
                raise missing_file_error(path, what, strays)
            paths.append(path)
        label = folder.parent / "labelsTr" / f"{case}{file_ending}" if labelled is not None else None
        patient = patients[case] if patients is not None else patient_of_case(case)
        studies.append(Study(case, patient, paths[0], paths[1], label))
    if strays:
        raise InputDataError(folder / strays[0], f"not named <case>_<4-digit channel>{file_ending}")
    return studies


def _check_dataset_json(meta: Any, path: Path) -> str:
    """Check the parts of ``dataset.json`` this bundle relies on; return its file ending."""
    if not isinstance(meta, dict):
        raise InputDataError(path, "expected a JSON object")
    channels = meta.get("channel_names", meta.get("modality"))
    if not isinstance(channels, dict) or "0" not in channels or "1" not in channels:
        raise InputDataError(path, 'channel_names must name channel "0" (CT) and channel "1" (PET)')
    if any(word in str(channels["0"]).lower() for word in ("pet", "suv")):
        raise InputDataError(path, f"channel 0 is {channels['0']!r}, but this bundle expects CT = 0 and PET = 1")
    labels = meta.get("labels")
    values = sorted(str(value) for value in labels.values()) if isinstance(labels, dict) else []
    keys = sorted(str(key) for key in labels) if isinstance(labels, dict) else []
    if values != ["0", "1"] and keys != ["0", "1"]:
        raise InputDataError(path, f"labels must be background = 0 and one lesion label = 1, got {labels!r}")
    file_ending = meta.get("file_ending", ".nii.gz")
    if file_ending not in NIFTI_ENDINGS:
        raise InputDataError(path, f"file_ending {file_ending!r}: only NIfTI ({', '.join(NIFTI_ENDINGS)}) is supported")
    return file_ending


def find_nnunet_dataset(folder: str | os.PathLike) -> NnunetDataset:
    """Find the cases of an nnU-Net raw dataset and check its names and ``dataset.json``.

    Every label needs ``imagesTr/<case>_0000`` and ``_0001``, every image a label. The patient of each case comes
    from ``patients.json`` when present (it must list exactly the labelled cases), else from the case id.

    Raises:
        InputDataError: naming the file at fault.
    """
    folder = Path(folder)
    meta_path = folder / "dataset.json"
    meta = read_json(meta_path)
    file_ending = _check_dataset_json(meta, meta_path)
    label_cases, label_strays = _split_labels(folder / "labelsTr", file_ending)
    if label_strays:
        raise InputDataError(folder / "labelsTr" / label_strays[0], f"not named <case>{file_ending}")
    if not label_cases:
        raise InputDataError(folder / "labelsTr", f"no label files (<case>{file_ending})")
    patients_path = folder / PATIENTS_FILE
    patients = (
        check_patient_map(read_json(patients_path), label_cases, patients_path) if patients_path.exists() else None
    )
    training = _image_studies(folder / "imagesTr", file_ending, patients, label_cases)
    test_folder = folder / "imagesTs"
    testing = _image_studies(test_folder, file_ending, None, None) if test_folder.is_dir() else []
    notes = []
    if isinstance(meta.get("numTraining"), int) and meta["numTraining"] != len(training):
        notes.append(f"dataset.json says numTraining {meta['numTraining']}, but labelsTr holds {len(training)} cases")
    return NnunetDataset(folder, file_ending, training, testing, patients is not None, notes)


def _split_labels(folder: Path, file_ending: str) -> tuple[list[str], list[str]]:
    """Label case ids of ``labelsTr``, and the NIfTI files there without the dataset's file ending."""
    cases, strays = [], []
    for entry in _nifti_files(folder):
        if entry.name.endswith(file_ending):
            cases.append(entry.name.removesuffix(file_ending))
        else:
            strays.append(entry.name)
    return cases, strays
