# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Read found studies' volumes and check that CT, PET and mask can be used together (before anything is written)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple, TypeVar

import numpy as np
from scripts.data.grids import grid_difference, same_grid, voxel_spacing
from scripts.data.plausibility import IntensitySummary, check_pet_ct, check_spacing
from scripts.data.studies import Study
from scripts.data.volume_checks import check_affine, check_image, check_label, check_overlap
from scripts.data.volumes import read_volume
from scripts.errors import InputDataError


@dataclass(frozen=True)
class StudyCheck:
    """What reading a valid study found: the CT grid shape, whether PET is on it, the lesion voxel count."""

    case: str
    shape: tuple[int, int, int]
    pet_on_ct_grid: bool
    lesion_voxels: int


def check_study(study: Study, allow_resampling: bool = True, check_plausibility: bool = True) -> StudyCheck:
    """Read a study's volumes and check they can be used together.

    CT and PET must be 3D, non-empty and finite with usable affines; the mask 3D with values 0/1 on the CT grid
    (:func:`scripts.data.grids.same_grid`, the one rule). PET off the CT grid must overlap it enough to be
    resampled onto it, or is an error when ``allow_resampling`` is False (a dataset used in place). With
    ``check_plausibility`` the CT must also look like HU, the PET like SUV and both voxel sizes like a scanner's
    (:mod:`scripts.data.plausibility`).

    Returns:
        What was found, for conversion and the summary.

    Raises:
        InputDataError: the first problem, naming the file it is in.
    """
    ct = read_volume(study.ct)
    ct_shape, ct_affine = check_image(ct.array, study.ct), ct.affine
    check_affine(ct_affine, study.ct)
    ct_summary = IntensitySummary.of(ct.array) if check_plausibility else None
    del ct
    pet = read_volume(study.pet)
    pet_shape, pet_affine = check_image(pet.array, study.pet), pet.affine
    check_affine(pet_affine, study.pet)
    pet_summary = IntensitySummary.of(pet.array) if check_plausibility else None
    del pet
    pet_on_ct_grid = same_grid(ct_affine, ct_shape, pet_affine, pet_shape)
    if not pet_on_ct_grid:
        if not allow_resampling:
            difference = grid_difference(ct_affine, ct_shape, pet_affine, pet_shape)
            raise InputDataError(
                study.pet,
                f"PET is not on the CT grid of {study.ct.name} ({difference}); nnU-Net needs all channels on one "
                "grid, and a dataset used in place is not resampled",
            )
        check_overlap(ct_affine, ct_shape, pet_affine, pet_shape, study.pet)
    lesion_voxels = 0
    if study.label is not None:
        label = read_volume(study.label)
        label_shape = check_label(label.array, study.label)
        if not same_grid(ct_affine, ct_shape, label.affine, label_shape):
            difference = grid_difference(ct_affine, ct_shape, label.affine, label_shape)
            raise InputDataError(
                study.label,
                f"the mask is not on the CT grid of {study.ct.name} ({difference}); it must share its voxels",
            )
        lesion_voxels = int(np.count_nonzero(label.array))
    if ct_summary is not None and pet_summary is not None:
        check_spacing(voxel_spacing(ct_affine), study.ct)
        check_spacing(voxel_spacing(pet_affine), study.pet)
        check_pet_ct(ct_summary, study.ct, pet_summary, study.pet)
    return StudyCheck(study.case, ct_shape, pet_on_ct_grid, lesion_voxels)


Log = Callable[[str], None]
_Item = TypeVar("_Item")


class _Problem(NamedTuple):
    """An :class:`InputDataError` as plain data (that exception does not survive pickling between processes)."""

    path: str
    problem: str


def parallel_map(function: Callable[[_Item], Any], items: Sequence[_Item], workers: int, log: Log, verb: str) -> list:
    """``[function(item) for item in items]``, in order, over ``workers`` processes, logging progress."""
    total, results = len(items), []
    every = max(1, total // 10)
    if workers > 1 and total > 1:
        context = multiprocessing.get_context("spawn")  # no fork of a parent that may hold threads (torch)
        with ProcessPoolExecutor(max_workers=min(workers, total), mp_context=context) as pool:
            outputs = pool.map(function, items)
            for done, output in enumerate(outputs, start=1):
                results.append(output)
                _log_progress(log, verb, done, total, every)
    else:
        for done, item in enumerate(items, start=1):
            results.append(function(item))
            _log_progress(log, verb, done, total, every)
    return results


def _log_progress(log: Log, verb: str, done: int, total: int, every: int) -> None:
    if total >= 50 and (done % every == 0 or done == total):
        log(f"{verb} {done}/{total} studies")


def _check_or_problem(study: Study, allow_resampling: bool, check_plausibility: bool) -> StudyCheck | _Problem:
    try:
        return check_study(study, allow_resampling, check_plausibility)
    except InputDataError as error:
        return _Problem(error.path, error.problem)


def check_all(
    studies: Sequence[Study],
    allow_resampling: bool,
    workers: int = 1,
    log: Log = print,
    check_plausibility: bool = True,
) -> list[StudyCheck]:
    """Check every study (:func:`check_study`, in ``workers`` processes); raise for the first bad one after listing all.

    Raises:
        InputDataError: for the first study with a problem; its message counts the others, which are logged.
    """
    results = parallel_map(
        partial(_check_or_problem, allow_resampling=allow_resampling, check_plausibility=check_plausibility),
        studies,
        workers,
        log,
        "checked",
    )
    problems = [result for result in results if isinstance(result, _Problem)]
    if not problems:
        return results
    log(f"{len(problems)} of {len(studies)} studies cannot be used:")
    for problem in problems:
        log(f"  {problem.path}: {problem.problem}")
    others = f" (and {len(problems) - 1} more studies with problems, listed above)" if len(problems) > 1 else ""
    raise InputDataError(problems[0].path, problems[0].problem + others)
