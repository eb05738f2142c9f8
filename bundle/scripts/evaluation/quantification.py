# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Lesion quantification of a predicted mask: count, volume, SUVmax, SUVmean, SUVpeak, TLG, total MTV and TLG.

Lesions are the connected components of the mask (18-connectivity, as the autoPET metrics). Per lesion:

- volume (ml) = voxels x voxel volume; SUVmax and SUVmean over the lesion's voxels;
- SUVpeak = the highest mean SUV inside a 1 ml sphere (radius 6.20 mm) centred on a voxel of the lesion (PERCIST's
  definition; the sphere takes every voxel whose centre lies inside it, lesion or not);
- TLG (total lesion glycolysis) = SUVmean x volume.

Per study: the lesion count, the metabolic tumour volume (MTV, the sum of lesion volumes) and the total TLG.

    python -m scripts.evaluation.quantification --pred MASK.nii.gz --pet SUV.nii.gz --out lesions.json   (+ lesions.csv)
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from scipy import ndimage
from scripts.atomic_io import write_csv, write_json
from scripts.data.grids import grid_difference, inside_field_of_view, resample_onto_grid, same_grid, voxel_spacing
from scripts.data.inference_inputs import ct_and_pet_paths, study_name
from scripts.data.plausibility import check_pet_plausibility, check_spacing
from scripts.data.volume_checks import check_affine, check_image, check_label
from scripts.data.volumes import Volume, read_volume
from scripts.errors import InputDataError, say
from scripts.evaluation.autopet_metrics import CONNECTIVITY_18

PEAK_SPHERE_ML = 1.0


@dataclass(frozen=True)
class Lesion:
    """One connected component of the mask."""

    index: int
    voxels: int
    volume_ml: float
    suv_max: float
    suv_mean: float
    suv_peak: float
    tlg: float
    centroid_voxel: tuple[float, float, float]


@dataclass(frozen=True)
class StudyQuantification:
    """All lesions of one study and the study totals."""

    lesion_count: int
    mtv_ml: float
    total_tlg: float
    lesions: list[Lesion]


def sphere_kernel(spacing_mm: Sequence[float], volume_ml: float = PEAK_SPHERE_ML) -> np.ndarray:
    """Boolean kernel of the voxels whose centres lie within a sphere of ``volume_ml`` around the centre voxel."""
    radius = (3.0 * volume_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)  # mm
    half = [int(radius // s) for s in spacing_mm]
    axes = [np.arange(-h, h + 1) * s for h, s in zip(half, spacing_mm, strict=True)]
    grid = np.meshgrid(*axes, indexing="ij")
    return sum(g**2 for g in grid) <= radius**2 + 1e-9


def _peak(suv: np.ndarray, labels: np.ndarray, index: int, box: tuple[slice, ...], kernel: np.ndarray) -> float:
    """Highest sphere-mean SUV over the voxels of lesion ``index``, computed in its box grown by the radius."""
    half = [k // 2 for k in kernel.shape]
    grown = tuple(slice(max(b.start - h, 0), min(b.stop + h, n)) for b, h, n in zip(box, half, suv.shape, strict=True))
    weights = kernel.astype(np.float64) / kernel.sum()
    means = ndimage.correlate(suv[grown].astype(np.float64), weights, mode="constant", cval=0.0)
    # near the image border the sphere leaves the volume: renormalise by the share of it that is inside
    inside = ndimage.correlate(np.ones_like(means), weights, mode="constant", cval=0.0)
    return float((means / inside)[labels[grown] == index].max())


def quantify(mask: np.ndarray, suv: np.ndarray, spacing_mm: Sequence[float]) -> StudyQuantification:
    """Quantify every lesion (18-connected component) of a binary ``mask`` on the grid of ``suv``."""
    if mask.shape != suv.shape:
        raise ValueError(f"mask {mask.shape} and SUV {suv.shape} must share one grid")
    voxel_ml = float(np.prod(spacing_mm)) / 1000.0
    labels, count = ndimage.label(mask > 0, structure=CONNECTIVITY_18)
    kernel = sphere_kernel(spacing_mm)
    lesions = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        local = labels[box] == index
        values = suv[box][local].astype(np.float64)
        volume = values.size * voxel_ml
        suv_mean = float(values.mean())
        centroid = tuple(float(c) + b.start for c, b in zip(ndimage.center_of_mass(local), box, strict=True))
        lesions.append(
            Lesion(
                index=index,
                voxels=int(values.size),
                volume_ml=volume,
                suv_max=float(values.max()),
                suv_mean=suv_mean,
                suv_peak=_peak(suv, labels, index, box, kernel),
                tlg=suv_mean * volume,
                centroid_voxel=centroid,  # type: ignore[arg-type]
            )
        )
    return StudyQuantification(
        lesion_count=count,
        mtv_ml=float(sum(lesion.volume_ml for lesion in lesions)),
        total_tlg=float(sum(lesion.tlg for lesion in lesions)),
        lesions=lesions,
    )


def pet_on_mask_grid(mask: Volume, pet: Volume) -> tuple[np.ndarray, str | None]:
    """The SUV voxels on the mask's grid, and how they got there (None when the two already share a grid).

    A PET on another grid is resampled trilinearly onto the mask's grid, provided every lesion voxel of the mask
    lies inside the PET's field of view. A mask with the PET's shape and voxel axes but another origin is refused:
    that is a header that moved, not a second grid, and measuring it would read the uptake of other voxels.

    Raises:
        InputDataError: naming the mask or the PET and how the two disagree.
    """
    suv = pet.array.reshape(pet.spatial_shape)
    if same_grid(mask.affine, mask.spatial_shape, pet.affine, pet.spatial_shape):
        return suv, None
    difference = grid_difference(mask.affine, mask.spatial_shape, pet.affine, pet.spatial_shape)
    if mask.spatial_shape == pet.spatial_shape and np.allclose(mask.affine[:3, :3], pet.affine[:3, :3], atol=1e-3):
        raise InputDataError(
            mask.path,
            f"the mask has the PET's shape and voxel size but lies elsewhere ({difference}, origin "
            f"{_origin(mask.affine)} vs {_origin(pet.affine)} mm in {pet.path}): a shifted header, so its lesions "
            "would be measured on other voxels",
        )
    inside = inside_field_of_view(pet.affine, pet.spatial_shape, mask.affine, mask.spatial_shape).numpy()
    outside = int(np.count_nonzero((mask.array.reshape(mask.spatial_shape) > 0) & ~inside))
    if outside:
        raise InputDataError(
            mask.path, f"{outside} lesion voxel(s) lie outside the field of view of the PET {pet.path} ({difference})"
        )
    source = MetaTensor(torch.from_numpy(np.ascontiguousarray(suv)[None]), affine=pet.affine)
    resampled = resample_onto_grid(source, mask.affine, mask.spatial_shape)[0].numpy()
    return resampled, f"PET resampled trilinearly onto the mask's grid ({difference})"


def _origin(affine: np.ndarray) -> str:
    return "(" + ", ".join(f"{value:.1f}" for value in np.asarray(affine)[:3, 3]) + ")"


def quantify_files(
    pred_path: str | os.PathLike,
    pet_path: str | os.PathLike,
    out_json: str | os.PathLike,
    check_plausibility: bool = True,
    log: Callable[[str], None] = say,
) -> StudyQuantification:
    """Quantify a mask file against its SUV file; write ``out_json`` and a per-lesion CSV beside it.

    Both files are checked first: readable NIfTI, a 0/1 mask, a finite PET that (with ``check_plausibility``)
    looks like SUV (:mod:`scripts.data.plausibility`), and one region (:func:`pet_on_mask_grid`). A PET resampled
    onto the mask's grid is said so in ``log`` and in the JSON's ``pet_resampling``.

    Raises:
        InputDataError: naming the file at fault; nothing is written then.
    """
    mask_image = read_volume(pred_path, "prediction")
    pet_image = read_volume(pet_path, "PET", dtype=np.float32)
    check_label(mask_image.array, pred_path)
    check_affine(mask_image.affine, pred_path)
    check_image(pet_image.array, pet_path)
    check_affine(pet_image.affine, pet_path)
    if check_plausibility:
        check_spacing(voxel_spacing(mask_image.affine), pred_path)
        check_pet_plausibility(pet_image.array, pet_image.affine, pet_path)
    suv, resampling = pet_on_mask_grid(mask_image, pet_image)
    if resampling is not None:
        log(f"{pet_path}: {resampling}")
    result = quantify(mask_image.array.reshape(mask_image.spatial_shape), suv, mask_image.zooms_mm)
    summary = {"prediction": str(pred_path), "pet": str(pet_path), "pet_resampling": resampling, **asdict(result)}
    write_json(summary, out_json)
    rows = [asdict(lesion) for lesion in result.lesions]
    fields = list(Lesion.__dataclass_fields__)
    write_csv(rows, Path(out_json).with_suffix(".csv"), fieldnames=fields)
    return result


def quantify_predictions(
    items: Sequence[Mapping[str, Any]],
    pred_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    check_plausibility: bool = True,
) -> list[StudyQuantification]:
    """Quantify ``pred_dir/<study>.nii.gz`` of every data item into ``out_dir/<study>_lesions.{json,csv}``."""
    results = []
    for item in items:
        ct, pet = ct_and_pet_paths(item)
        name = study_name(ct)
        out_json = Path(out_dir) / f"{name}_lesions.json"
        results.append(quantify_files(Path(pred_dir) / f"{name}.nii.gz", pet, out_json, check_plausibility))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; exit 2 with one line for bad input."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pred", required=True, type=Path, help="binary lesion mask (NIfTI)")
    parser.add_argument("--pet", required=True, type=Path, help="PET in SUV (NIfTI)")
    parser.add_argument("--out", required=True, type=Path, help="JSON to write (a per-lesion CSV goes beside it)")
    parser.add_argument(
        "--no-plausibility-check",
        dest="check_plausibility",
        action="store_false",
        help="accept a PET that does not look like SUV or voxel sizes no scanner writes (unusual data)",
    )
    args = parser.parse_args(argv)
    try:
        result = quantify_files(args.pred, args.pet, args.out, args.check_plausibility)
    except InputDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    say(f"{result.lesion_count} lesions, MTV {result.mtv_ml:.2f} ml, total TLG {result.total_tlg:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
