# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Patient-grouped k-fold splits in nnU-Net's ``splits_final.json`` form, and the case -> patient map.

All studies of one patient land in the same validation fold, so a model is never validated on a patient it
was trained on. The split depends only on the case -> patient map, the number of folds and the seed: not on
the order the cases were found in, nor on the Python version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from scripts.errors import InputDataError

SPLITS_FILE = "splits_final.json"
PATIENTS_FILE = "patients.json"
DEFAULT_FOLDS = 5

# nnU-Net autoPET case ids: <tracer>_<patient>_<study date and description>.
_TRACER_CASE = re.compile(r"^(?:fdg|psma)_[^_]+(?=_)", re.IGNORECASE)

Fold = dict[str, list[str]]


def patient_of_case(case: str) -> str:
    """Patient id of an nnU-Net case id: ``fdg_<patient>_<date...>`` -> ``fdg_<patient>``, else the whole id.

    Args:
        case: the case id, e.g. ``psma_95b833d46f153cd2_2018-04-16``.

    Returns:
        The first two underscore tokens for ``fdg_``/``psma_`` ids with a study part, otherwise ``case``.
    """
    match = _TRACER_CASE.match(case)
    return match.group(0) if match else case


def _shuffle_key(seed: int, patient: str) -> str:
    """A seeded, version-stable sort key (``random`` does not promise a stable ``shuffle`` across versions)."""
    return hashlib.sha256(f"{seed}\0{patient}".encode()).hexdigest()


def make_patient_folds(patients: Mapping[str, str], n_folds: int = DEFAULT_FOLDS, seed: int = 0) -> list[Fold]:
    """Split cases into ``n_folds`` folds so that no patient's studies are spread over two folds.

    Patients are put in a seeded pseudo-random order, patients with more studies first, and each goes to the
    fold that has the fewest cases so far (then the fewest patients, then the lowest index). With one study
    per patient this is a round robin over the shuffled patients; fold sizes differ by at most the largest
    number of studies of one patient.

    Args:
        patients: case id -> patient id, for every case to split.
        n_folds: number of folds, at least 2.
        seed: any integer; the same seed and map always give the same split.

    Returns:
        nnU-Net's ``splits_final.json`` content: per fold ``{"train": [...], "val": [...]}``, both sorted.

    Raises:
        ValueError: fewer than 2 folds, or fewer patients than folds.
    """
    if n_folds < 2:
        raise ValueError(f"the number of folds must be at least 2, got {n_folds}")
    studies_of: dict[str, list[str]] = defaultdict(list)
    for case, patient in patients.items():
        studies_of[patient].append(case)
    if len(studies_of) < n_folds:
        raise ValueError(
            f"{len(studies_of)} patient(s) ({len(patients)} cases) cannot fill {n_folds} folds: "
            "every fold needs at least one patient; use fewer folds"
        )
    order = sorted(studies_of, key=lambda patient: (-len(studies_of[patient]), _shuffle_key(seed, patient)))
    val_cases: list[list[str]] = [[] for _ in range(n_folds)]
    patient_counts = [0] * n_folds
    for patient in order:
        fold = min(range(n_folds), key=lambda k: (len(val_cases[k]), patient_counts[k], k))
        val_cases[fold].extend(studies_of[patient])
        patient_counts[fold] += 1
    all_cases = sorted(patients)
    folds: list[Fold] = []
    for val in val_cases:
        held_out = set(val)
        folds.append({"train": [case for case in all_cases if case not in held_out], "val": sorted(held_out)})
    return folds


def check_splits(splits: Any, cases: Iterable[str], path: str | os.PathLike) -> list[Fold]:
    """Check an existing ``splits_final.json`` content against the dataset's cases.

    Each fold must be ``{"train": [...], "val": [...]}`` with known case ids only, train and val disjoint and
    together all cases; every case must be validated in exactly one fold.

    Args:
        splits: the parsed JSON.
        cases: every labelled case id of the dataset.
        path: the file, named in errors.

    Returns:
        The splits with sorted lists.

    Raises:
        InputDataError: the first problem found, naming ``path``.
    """
    known = set(cases)
    if not isinstance(splits, list) or not splits:
        raise InputDataError(path, 'expected a non-empty list of folds, each {"train": [...], "val": [...]}')
    folds: list[Fold] = []
    validated_in: dict[str, int] = {}
    for index, fold in enumerate(splits):
        if not isinstance(fold, dict) or set(fold) != {"train", "val"}:
            raise InputDataError(path, f'fold {index} is not {{"train": [...], "val": [...]}}')
        train, val = fold["train"], fold["val"]
        for part, ids in (("train", train), ("val", val)):
            if not isinstance(ids, list) or not all(isinstance(case, str) for case in ids):
                raise InputDataError(path, f'fold {index} "{part}" is not a list of case ids')
            unknown = sorted(set(ids) - known)
            if unknown:
                raise InputDataError(
                    path, f'fold {index} "{part}" names {_count(unknown)} not in the dataset: {_show(unknown)}'
                )
        both = sorted(set(train) & set(val))
        if both:
            raise InputDataError(path, f"fold {index} has {_count(both)} in both train and val: {_show(both)}")
        missing = sorted(known - set(train) - set(val))
        if missing:
            raise InputDataError(path, f"fold {index} leaves out {_count(missing)} of the dataset: {_show(missing)}")
        for case in val:
            if case in validated_in:
                raise InputDataError(path, f"case {case} is validated in folds {validated_in[case]} and {index}")
            validated_in[case] = index
        folds.append({"train": sorted(train), "val": sorted(val)})
    never = sorted(known - set(validated_in))
    if never:
        raise InputDataError(path, f"{_count(never)} never validated in any fold: {_show(never)}")
    return folds


def patients_split_across_folds(splits: list[Fold], patients: Mapping[str, str]) -> list[str]:
    """Patients whose studies are validated in more than one fold (empty for a patient-grouped split)."""
    folds_of: dict[str, set[int]] = defaultdict(set)
    for index, fold in enumerate(splits):
        for case in fold["val"]:
            folds_of[patients[case]].add(index)
    return sorted(patient for patient, folds in folds_of.items() if len(folds) > 1)


def check_patient_map(mapping: Any, cases: Iterable[str], path: str | os.PathLike) -> dict[str, str]:
    """Check a ``patients.json`` content (case id -> patient id) covers exactly the dataset's cases.

    Raises:
        InputDataError: not a string -> string mapping, or cases missing from it or unknown to the dataset.
    """
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise InputDataError(path, "expected a JSON object mapping each case id to its patient id")
    known = set(cases)
    missing = sorted(known - set(mapping))
    if missing:
        raise InputDataError(path, f"no patient for {_count(missing)}: {_show(missing)}")
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise InputDataError(path, f"names {_count(unknown)} not in the dataset: {_show(unknown)}")
    return dict(sorted(mapping.items()))


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file, raising :class:`InputDataError` naming it when it cannot be read or parsed."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputDataError(path, f"cannot be read as JSON ({error})") from error


def _count(cases: list[str]) -> str:
    return f"{len(cases)} case" + ("" if len(cases) == 1 else "s")


def _show(cases: list[str], limit: int = 5) -> str:
    return ", ".join(cases[:limit]) + (", ..." if len(cases) > limit else "")
