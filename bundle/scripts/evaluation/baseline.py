# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""A fixed SUV-threshold segmentation: the floor any trained model must clear.

Every voxel at or above ``--suv`` is lesion, connected components below ``--min-ml`` are dropped. It
finds hot lesions and also every hot organ (brain, bladder, kidneys...), which is exactly the false-positive
problem a learned model has to solve.

    python -m scripts.evaluation.baseline --images DATASET/imagesTr --out PRED_DIR [--suv 4.0] [--min-ml 0.5]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage
from scripts.atomic_io import save_nifti
from scripts.data.file_layout import NNUNET_PET_SUFFIX
from scripts.data.volume_checks import check_image
from scripts.data.volumes import read_volume
from scripts.errors import InputDataError, say
from scripts.evaluation.autopet_metrics import CONNECTIVITY_18

PET_SUFFIX = NNUNET_PET_SUFFIX + ".nii.gz"


def threshold_segmentation(
    suv: np.ndarray, voxel_ml: float, suv_threshold: float = 4.0, min_ml: float = 0.5
) -> np.ndarray:
    """Binary uint8 mask of voxels with SUV >= ``suv_threshold``, without components smaller than ``min_ml``."""
    mask = suv >= suv_threshold
    labels, count = ndimage.label(mask, structure=CONNECTIVITY_18)
    if count == 0:
        return mask.astype(np.uint8)
    sizes_ml = np.bincount(labels.ravel())[1:] * voxel_ml
    keep = np.concatenate([[False], sizes_ml >= min_ml])
    return keep[labels].astype(np.uint8)


def segment_folder(images_dir: Path, out_dir: Path, suv_threshold: float = 4.0, min_ml: float = 0.5) -> list[Path]:
    """Segment every ``<case>_0001.nii.gz`` PET of an nnU-Net images folder into ``out_dir/<case>.nii.gz``."""
    pets = sorted(Path(images_dir).glob(f"*{PET_SUFFIX}"))
    if not pets:
        raise InputDataError(images_dir, f"no PET files (*{PET_SUFFIX}) found")
    written = []
    for pet_path in pets:
        image = read_volume(pet_path, "PET", dtype=np.float32)
        suv = image.array
        check_image(suv, pet_path)
        voxel_ml = float(np.prod(image.zooms_mm)) / 1000.0
        mask = threshold_segmentation(suv, voxel_ml, suv_threshold, min_ml)
        case = pet_path.name[: -len(PET_SUFFIX)]
        written.append(save_nifti(mask, image.affine, Path(out_dir) / f"{case}.nii.gz", dtype=np.uint8))
    return written


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, required=True, help="nnU-Net imagesTr/imagesTs folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the <case>.nii.gz masks")
    parser.add_argument("--suv", type=float, default=4.0, help="SUV threshold (default 4.0)")
    parser.add_argument("--min-ml", type=float, default=0.5, help="drop components smaller than this (ml)")
    args = parser.parse_args(argv)
    try:
        written = segment_folder(args.images, args.out, args.suv, args.min_ml)
    except InputDataError as error:
        raise SystemExit(f"error: {error}") from None
    say(f"wrote {len(written)} masks to {args.out}")


if __name__ == "__main__":
    main()
