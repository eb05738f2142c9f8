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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from scipy import ndimage

from scripts.atomic_io import write_csv, write_json
from scripts.data.grids import resample_onto_grid, same_grid
from scripts.data.inference_inputs import ct_and_pet_paths, study_name
from scripts.data.volume_checks import check_image, check_label
from scripts.data.volumes import read_volume
from scripts.errors import InputDataError
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


def quantify_files(
    pred_path: str | os.PathLike, pet_path: str | os.PathLike, out_json: str | os.PathLike
) -> StudyQuantification:
    """Quantify a mask file against its SUV file; write ``out_json`` and a per-lesion CSV beside it.

    A PET on another grid than the mask is resampled onto the mask's grid (trilinear).
    """
    mask_image = read_volume(pred_path)
    pet_image = read_volume(pet_path, dtype=np.float32)
    mask = mask_image.array
    check_label(mask, pred_path)
    check_image(pet_image.array, pet_path)
    suv = pet_image.array.reshape(pet_image.spatial_shape)
    if not same_grid(mask_image.affine, mask_image.spatial_shape, pet_image.affine, pet_image.spatial_shape):
        source = MetaTensor(torch.from_numpy(suv[None]), affine=pet_image.affine)
        suv = resample_onto_grid(source, mask_image.affine, mask_image.spatial_shape)[0].numpy()
    result = quantify(mask.reshape(mask_image.spatial_shape), suv, mask_image.zooms_mm)
    summary = {"prediction": str(pred_path), "pet": str(pet_path), **asdict(result)}
    write_json(summary, out_json)
    rows = [{key: value for key, value in asdict(lesion).items()} for lesion in result.lesions]
    fields = list(Lesion.__dataclass_fields__)
    write_csv(rows, Path(out_json).with_suffix(".csv"), fieldnames=fields)
    return result


def quantify_predictions(
    items: Sequence[Mapping[str, Any]], pred_dir: str | os.PathLike, out_dir: str | os.PathLike
) -> list[StudyQuantification]:
    """Quantify ``pred_dir/<study>.nii.gz`` of every data item into ``out_dir/<study>_lesions.{json,csv}``."""
    results = []
    for item in items:
        ct, pet = ct_and_pet_paths(item)
        name = study_name(ct)
        results.append(quantify_files(Path(pred_dir) / f"{name}.nii.gz", pet, Path(out_dir) / f"{name}_lesions.json"))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; exit 2 with one line for bad input."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pred", required=True, type=Path, help="binary lesion mask (NIfTI)")
    parser.add_argument("--pet", required=True, type=Path, help="PET in SUV (NIfTI)")
    parser.add_argument("--out", required=True, type=Path, help="JSON to write (a per-lesion CSV goes beside it)")
    args = parser.parse_args(argv)
    try:
        result = quantify_files(args.pred, args.pet, args.out)
    except InputDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{result.lesion_count} lesions, MTV {result.mtv_ml:.2f} ml, total TLG {result.total_tlg:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
