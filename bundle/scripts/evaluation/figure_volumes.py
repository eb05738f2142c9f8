# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The volumes a study figure draws: CT, PET and masks on the RAS-reoriented CT grid, and the slice to show.

Volumes are reoriented to RAS with ``nibabel.as_closest_canonical``; the PET (and any mask on another grid,
by :func:`scripts.data.grids.same_grid`) is resampled onto the CT grid for display.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor
from scipy import ndimage
from scripts.data.grids import resample_onto_grid, same_grid
from scripts.data.volume_checks import check_image, check_label
from scripts.data.volumes import read_volume
from scripts.errors import InputDataError
from scripts.evaluation.autopet_metrics import CONNECTIVITY_18, affine_voxel_volume_ml, foreground_boxes

PathLike = str | os.PathLike

# CT voxels above this value count as body when centring the slices of a lesion-free study.
BODY_HU = -500.0


@dataclass(frozen=True)
class Focus:
    """Where the slices of a figure go.

    Attributes:
        voxel: (x, y, z) index on the RAS-reoriented CT grid; z is the axial slice shown.
        source: ``"ground truth"``, ``"prediction"`` or ``"body centre"``.
        voxels: size of the chosen component in voxels (0 for the body centre).
    """

    voxel: tuple[int, int, int]
    source: str
    voxels: int


@dataclass(frozen=True)
class StudyVolumes:
    """One study on the RAS-reoriented CT grid: images, optional masks and the voxel spacing in mm."""

    ct: np.ndarray
    pet: np.ndarray
    gt: np.ndarray | None
    pred: np.ndarray | None
    spacing: tuple[float, float, float]
    voxel_ml: float


def largest_component(mask: np.ndarray) -> Focus | None:
    """The largest 18-connected component of a 3D mask, as the axial slice where it is widest.

    Args:
        mask: 3D boolean (or 0/1) array.

    Returns:
        ``Focus`` whose ``voxel`` is (x, y, z): z is the slice holding most voxels of the component (the lowest
        such slice on a tie) and (x, y) the component's centroid within that slice, rounded; ``None`` for an
        empty mask. ``source`` is left as ``""`` for the caller to fill in.
    """
    mask = np.asarray(mask, dtype=bool)
    best: tuple[int, np.ndarray] | None = None
    for box in foreground_boxes(mask):
        labels, count = ndimage.label(mask[box], structure=CONNECTIVITY_18)
        if count == 0:
            continue
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        sizes[0] = 0
        label = int(np.argmax(sizes))
        if best is None or int(sizes[label]) > best[0]:
            coords = np.argwhere(labels == label) + np.array([s.start for s in box])
            best = (int(sizes[label]), coords)
    if best is None:
        return None
    voxels, coords = best
    widest = int(np.argmax(np.bincount(coords[:, 2])))
    in_slice = coords[coords[:, 2] == widest]
    x, y = (int(round(v)) for v in in_slice[:, :2].mean(axis=0))
    return Focus((x, y, widest), "", voxels)


def body_centre(ct: np.ndarray) -> tuple[int, int, int]:
    """Centroid of the body (CT above :data:`BODY_HU`), from every 4th voxel; the grid centre when none is found."""
    step = 4
    coords = np.argwhere(ct[::step, ::step, ::step] > BODY_HU)
    if coords.size == 0:
        return tuple(int(s) // 2 for s in ct.shape)  # type: ignore[return-value]
    centre = coords.mean(axis=0) * step
    return tuple(int(min(round(c), s - 1)) for c, s in zip(centre, ct.shape, strict=True))  # type: ignore[return-value]


def choose_focus(ct: np.ndarray, gt: np.ndarray | None, pred: np.ndarray | None) -> Focus:
    """Pick the slices: largest ground-truth lesion, else largest predicted component, else the body centre."""
    for mask, source in ((gt, "ground truth"), (pred, "prediction")):
        if mask is not None:
            found = largest_component(mask)
            if found is not None:
                return Focus(found.voxel, source, found.voxels)
    return Focus(body_centre(ct), "body centre", 0)


def _load(path: PathLike, what: str) -> nib.Nifti1Image:
    volume = read_volume(path, what)
    image = nib.squeeze_image(nib.Nifti1Image(volume.array, volume.affine, volume.header))
    file = volume.path
    if len(image.shape) != 3:
        raise InputDataError(file, f"expected a 3D {what} volume, got shape {tuple(image.shape)}")
    return image


def _same_grid(image: nib.Nifti1Image, reference: nib.Nifti1Image) -> bool:
    return same_grid(reference.affine, reference.shape, image.affine, image.shape)


def _on_grid(image: nib.Nifti1Image, ct: nib.Nifti1Image, ct_ras: nib.Nifti1Image, mode: str) -> np.ndarray:
    """``image`` on the RAS CT grid: reoriented if it shares the CT grid, else resampled (``bilinear``/``nearest``).

    Resampling goes through :func:`scripts.data.grids.resample_onto_grid`, the path the loader and ``prepare`` use.
    """
    if _same_grid(image, ct):
        return np.asarray(nib.as_closest_canonical(image).dataobj, dtype=np.float32)
    data = torch.as_tensor(np.asarray(image.dataobj, dtype=np.float32))[None]
    source = MetaTensor(data, affine=torch.as_tensor(image.affine, dtype=torch.float64))
    return resample_onto_grid(source, ct_ras.affine, ct_ras.shape, mode=mode)[0].numpy()


def _load_mask(path: PathLike, ct: nib.Nifti1Image, ct_ras: nib.Nifti1Image, what: str) -> np.ndarray:
    image = _load(path, what)
    raw = np.asarray(image.dataobj)
    check_label(raw, path)
    return _on_grid(image, ct, ct_ras, mode="nearest") > 0.5


def load_study(
    ct_path: PathLike, pet_path: PathLike, pred_path: PathLike | None = None, label_path: PathLike | None = None
) -> StudyVolumes:
    """Load a study onto the RAS-reoriented CT grid, checking every file (``InputDataError`` names the bad one)."""
    ct = _load(ct_path, "CT")
    ct_ras = nib.as_closest_canonical(ct)
    ct_array = np.asarray(ct_ras.dataobj, dtype=np.float32)
    check_image(ct_array, ct_path)
    pet = _load(pet_path, "PET")
    pet_array = _on_grid(pet, ct, ct_ras, mode="bilinear")
    check_image(pet_array, pet_path)
    gt = None if label_path is None else _load_mask(label_path, ct, ct_ras, "label")
    pred = None if pred_path is None else _load_mask(pred_path, ct, ct_ras, "prediction")
    spacing = tuple(float(s) for s in np.sqrt((ct_ras.affine[:3, :3] ** 2).sum(axis=0)))
    return StudyVolumes(ct_array, pet_array, gt, pred, spacing, affine_voxel_volume_ml(ct_ras.affine))  # type: ignore[arg-type]
