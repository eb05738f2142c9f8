# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Plausibility of a PET/CT study: CT must look like Hounsfield units, PET like SUV, voxels like a scanner's.

Validity checks (:mod:`scripts.data.volume_checks`) make sure a volume can be computed with (3D, finite, usable
affine); these make sure it is what it claims to be, so that swapped channels, an empty PET or a wrong header
fail loudly instead of giving a silently wrong mask. Every threshold is wide of what real scanners write: all
1,611 autoPET training studies (FDG: 2.036 x 2.036 x 3.0 mm; PSMA: 4.073 x 4.073 x 2.0, 2.734 x 2.734 x 3.27 and
4.073 x 4.073 x 5.0 mm; CT resampled onto the PET grid with -1024 HU padding, so air surrounds every body) lie
well inside them, and so do the studies of :mod:`scripts.synthetic` (down to 10 x 10 x 15 mm in the tests).

A study failing any of these rules raises :class:`~scripts.errors.InputDataError` naming the file:

- voxel size: every axis at least 0.3 mm; the two finer (in-plane) axes at most 10 mm, the coarsest (slices) at
  most 15 mm;
- CT air: at least 0.1 % of the CT voxels at or below -900 HU (the air around the body, the lungs);
- CT body: at least 0.1 % of the CT voxels above -500 HU (tissue); the CT not constant;
- PET not constant (an all-zero PET is the common case);
- PET not HU-like: at most 0.1 % of the PET voxels below -100 SUV (CT air is -1000 HU);
- PET not mostly negative: at most half of the PET voxels below 0 SUV;
- PET not in Bq/ml: at most 1 % of the PET voxels above 500 SUV (activity concentrations run into the 1000s).

CT and PET that each fail on the other's side are reported as swapped. The checks run where studies are read:
``scripts.data.prepare`` (every study, before anything is written), the preprocessing chain's loader (training,
pretraining, inference, evaluation and MONAI Label) and ``scripts.evaluation.quantification``. Unusual data can
turn them off:
``--no-plausibility-check`` on those CLIs, ``--check_plausibility False`` on the bundle configs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scripts.data.grids import voxel_spacing
from scripts.errors import InputDataError

PathLike = str | os.PathLike

MIN_SPACING_MM = 0.3
MAX_IN_PLANE_SPACING_MM = 10.0
MAX_SLICE_SPACING_MM = 15.0
SPACING_TOLERANCE_MM = 1e-3

AIR_HU = -900.0
BODY_HU = -500.0
MIN_AIR_FRACTION = 0.001
MIN_BODY_FRACTION = 0.001

HU_LIKE_SUV = -100.0
MAX_HU_LIKE_FRACTION = 0.001
MAX_NEGATIVE_FRACTION = 0.5
ACTIVITY_LIKE_SUV = 500.0
MAX_ACTIVITY_LIKE_FRACTION = 0.01


@dataclass(frozen=True)
class IntensitySummary:
    """The few numbers of a volume the plausibility rules look at (cheap to compute, small to keep)."""

    minimum: float
    maximum: float
    air_fraction: float  # share of voxels <= AIR_HU
    body_fraction: float  # share of voxels > BODY_HU
    negative_fraction: float  # share of voxels < 0
    hu_like_fraction: float  # share of voxels < HU_LIKE_SUV
    activity_like_fraction: float  # share of voxels > ACTIVITY_LIKE_SUV

    @classmethod
    def of(cls, volume: np.ndarray) -> IntensitySummary:
        """Summarise the finite voxel values of ``volume`` (any shape, any numeric type)."""
        values = np.asarray(volume)
        size = max(values.size, 1)

        def share(mask: np.ndarray) -> float:
            return float(np.count_nonzero(mask)) / size

        return cls(
            minimum=float(values.min()) if values.size else 0.0,
            maximum=float(values.max()) if values.size else 0.0,
            air_fraction=share(values <= AIR_HU),
            body_fraction=share(values > BODY_HU),
            negative_fraction=share(values < 0),
            hu_like_fraction=share(values < HU_LIKE_SUV),
            activity_like_fraction=share(values > ACTIVITY_LIKE_SUV),
        )

    @property
    def constant(self) -> bool:
        """Every voxel holds the same value."""
        return self.maximum == self.minimum

    def value_range(self) -> str:
        """``"values -1024 to 3071"`` for messages."""
        return f"values {self.minimum:.4g} to {self.maximum:.4g}"


def check_spacing(spacing_mm: Sequence[float], path: PathLike) -> None:
    """Raise unless the voxel size is one a PET or CT scanner writes (see the module table)."""
    finest, middle, coarsest = sorted(float(s) for s in spacing_mm)
    shown = " x ".join(f"{float(s):.4g}" for s in spacing_mm)
    if finest < MIN_SPACING_MM - SPACING_TOLERANCE_MM:
        problem = f"voxels of {shown} mm: an axis finer than {MIN_SPACING_MM} mm"
    elif middle > MAX_IN_PLANE_SPACING_MM + SPACING_TOLERANCE_MM:
        problem = f"voxels of {shown} mm: two axes coarser than {MAX_IN_PLANE_SPACING_MM:g} mm"
    elif coarsest > MAX_SLICE_SPACING_MM + SPACING_TOLERANCE_MM:
        problem = f"voxels of {shown} mm: an axis coarser than {MAX_SLICE_SPACING_MM:g} mm"
    else:
        return
    raise InputDataError(path, f"{problem}, which no PET/CT scanner writes; check the header's voxel size{_OVERRIDE}")


_OVERRIDE = " (for unusual data: --no-plausibility-check, or check_plausibility false in the bundle configs)"


def ct_problem(ct: IntensitySummary) -> str | None:
    """Why a CT summary does not look like Hounsfield units, or None when it does."""
    if ct.constant:
        return f"the CT is constant (every voxel {ct.minimum:.4g})"
    if ct.air_fraction < MIN_AIR_FRACTION:
        return (
            f"the CT has no air: {100 * ct.air_fraction:.2g}% of voxels at or below {AIR_HU:g} HU "
            f"(at least {100 * MIN_AIR_FRACTION:g}% expected; {ct.value_range()}), so it is not in Hounsfield units"
        )
    if ct.body_fraction < MIN_BODY_FRACTION:
        return (
            f"the CT has no body: {100 * ct.body_fraction:.2g}% of voxels above {BODY_HU:g} HU "
            f"(at least {100 * MIN_BODY_FRACTION:g}% expected; {ct.value_range()})"
        )
    return None


def pet_problem(pet: IntensitySummary) -> str | None:
    """Why a PET summary does not look like SUV, or None when it does."""
    if pet.constant:
        what = "all zero" if pet.minimum == 0 else f"constant (every voxel {pet.minimum:.4g})"
        return f"the PET is {what}: no uptake to segment"
    if pet.hu_like_fraction > MAX_HU_LIKE_FRACTION:
        return (
            f"the PET has HU-like values: {100 * pet.hu_like_fraction:.2g}% of voxels below {HU_LIKE_SUV:g} "
            f"({pet.value_range()}); SUV is never that negative"
        )
    if pet.negative_fraction > MAX_NEGATIVE_FRACTION:
        share = 100 * pet.negative_fraction
        return f"the PET is mostly negative: {share:.3g}% of voxels below 0 SUV ({pet.value_range()})"
    if pet.activity_like_fraction > MAX_ACTIVITY_LIKE_FRACTION:
        return (
            f"the PET is not in SUV: {100 * pet.activity_like_fraction:.2g}% of voxels above {ACTIVITY_LIKE_SUV:g} "
            f"({pet.value_range()}), as activity concentrations in Bq/ml would be"
        )
    return None


def check_ct(ct: IntensitySummary, path: PathLike) -> None:
    """Raise when a CT does not look like Hounsfield units."""
    problem = ct_problem(ct)
    if problem is not None:
        raise InputDataError(path, problem + _OVERRIDE)


def check_pet(pet: IntensitySummary, path: PathLike) -> None:
    """Raise when a PET does not look like SUV."""
    problem = pet_problem(pet)
    if problem is not None:
        raise InputDataError(path, problem + _OVERRIDE)


def check_pet_ct(ct: IntensitySummary, ct_path: PathLike, pet: IntensitySummary, pet_path: PathLike) -> None:
    """Raise when the CT does not look like HU or the PET not like SUV; name a swap when each looks like the other."""
    ct_wrong, pet_wrong = ct_problem(ct), pet_problem(pet)
    looks_swapped = (
        ct_wrong is not None
        and pet_wrong is not None
        and pet_problem(ct) is None
        and ct_problem(pet) is None
        and pet.air_fraction >= MIN_AIR_FRACTION
    )
    if looks_swapped:
        raise InputDataError(
            ct_path,
            f"CT and PET look swapped: this CT looks like SUV ({ct.value_range()}, no air) and the PET "
            f"{pet_path} like HU ({pet.value_range()}); pass CT as channel 0 / CTres and PET as channel 1 / SUV",
        )
    check_ct(ct, ct_path)
    check_pet(pet, pet_path)


def check_study_plausibility(
    ct: np.ndarray,
    ct_affine: np.ndarray,
    ct_path: PathLike,
    pet: np.ndarray,
    pet_affine: np.ndarray,
    pet_path: PathLike,
) -> None:
    """All the rules for a PET/CT pair: both voxel sizes, CT like HU, PET like SUV (a swap named as such)."""
    check_spacing(voxel_spacing(ct_affine), ct_path)
    check_spacing(voxel_spacing(pet_affine), pet_path)
    check_pet_ct(IntensitySummary.of(ct), ct_path, IntensitySummary.of(pet), pet_path)


def check_ct_plausibility(ct: np.ndarray, affine: np.ndarray, path: PathLike) -> None:
    """The rules for a CT on its own (CT-only pretraining studies): voxel size, HU."""
    check_spacing(voxel_spacing(affine), path)
    check_ct(IntensitySummary.of(ct), path)


def check_pet_plausibility(pet: np.ndarray, affine: np.ndarray, path: PathLike) -> None:
    """The rules for a PET on its own (quantification): voxel size, SUV."""
    check_spacing(voxel_spacing(affine), path)
    check_pet(IntensitySummary.of(pet), path)
