# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Imaging physics: CT numbers with partial-volume blur and noise; PET resolution blur, voxel size and noise.

PET noise is count-like: its standard deviation grows with the square root of the local activity,
and it is spatially correlated (as after iterative reconstruction and post-filtering).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scripts.synthetic.fields import SmoothField, interpolate_axis
from scripts.synthetic.grid import Grid
from scripts.synthetic.tissues import HU_CONTRAST, HU_NATIVE, HU_SUBJECT_SD, HU_TEXTURE, lookup

SLAB = 32
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
CT_RANGE = (-1024.0, 3071.0)


@dataclass(frozen=True)
class ScannerSettings:
    """Per-study acquisition and reconstruction settings."""

    pet_fwhm_mm: float  # PET spatial resolution (point-spread function FWHM)
    pet_noise: float  # PET noise SD = pet_noise * sqrt(SUV)
    ct_noise_hu: float  # CT noise SD (HU)
    pet_noise_correlation: float  # voxels
    ct_blur_voxels: float


def sample_scanner(rng: np.random.Generator) -> ScannerSettings:
    """Draw plausible settings: 5-7 mm PET FWHM, 10-18 % noise in the liver, 8-22 HU CT noise."""
    return ScannerSettings(
        pet_fwhm_mm=float(rng.uniform(5.0, 7.0)),
        pet_noise=float(rng.uniform(0.14, 0.26)),
        ct_noise_hu=float(rng.uniform(8.0, 22.0)),
        pet_noise_correlation=float(rng.uniform(0.6, 1.0)),
        ct_blur_voxels=0.45,
    )


def _correlated_noise(shape: tuple[int, ...], sigma_voxels: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to unit standard deviation."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    ndimage.gaussian_filter(noise, sigma_voxels, output=noise, truncate=3.0)
    delta = np.zeros(2 * int(np.ceil(3.0 * sigma_voxels)) + 1)
    delta[len(delta) // 2] = 1.0
    kernel = ndimage.gaussian_filter1d(delta, sigma_voxels, truncate=3.0)
    noise /= np.float32(np.sqrt(np.sum(kernel**2)) ** len(shape))
    return noise


def _by_tissue(
    tissue: np.ndarray, table: np.ndarray, texture: np.ndarray, field: SmoothField, multiply: bool
) -> np.ndarray:
    """Per-voxel value from a tissue table, varied smoothly by ``field`` (slab by slab)."""
    out = np.empty(tissue.shape, dtype=np.float32)
    for k0 in range(0, tissue.shape[2], SLAB):
        ks = slice(k0, min(k0 + SLAB, tissue.shape[2]))
        labels = tissue[:, :, ks]
        variation = texture[labels] * field.slab(ks.start, ks.stop)
        if multiply:
            out[:, :, ks] = table[labels] * np.maximum(1.0 + variation, 0.05)
        else:
            out[:, :, ks] = table[labels] + variation
    return out


def ct_numbers(tissue: np.ndarray, contrast_enhanced: bool, field: SmoothField, rng: np.random.Generator) -> np.ndarray:
    """Noise-free CT numbers (HU) per voxel, with per-subject tissue offsets and smooth texture."""
    table = dict(HU_NATIVE)
    if contrast_enhanced:
        table.update(HU_CONTRAST)
    values = lookup(table)
    values += lookup(HU_SUBJECT_SD) * rng.standard_normal(values.shape).astype(np.float32)
    return _by_tissue(tissue, values, lookup(HU_TEXTURE), field, multiply=False)


def activity(tissue: np.ndarray, uptake: np.ndarray, texture: np.ndarray, field: SmoothField) -> np.ndarray:
    """Noise-free physiological SUV per voxel, with smooth within-tissue variation."""
    return _by_tissue(tissue, uptake, texture, field, multiply=True)


def acquire_ct(hu: np.ndarray, settings: ScannerSettings, rng: np.random.Generator) -> np.ndarray:
    """CT image: partial-volume blur, correlated noise, whole HU clipped to the 12-bit range (float32)."""
    image = ndimage.gaussian_filter(hu, settings.ct_blur_voxels, truncate=3.0)
    noise = _correlated_noise(hu.shape, 0.6, rng)
    noise *= np.float32(settings.ct_noise_hu)
    image += noise
    # Whole HU, as scanners store them (and it keeps the float32 files compressible).
    np.round(image, out=image)
    return np.clip(image, *CT_RANGE, out=image)


def resample_to(volume: np.ndarray, grid: Grid, target: Grid) -> np.ndarray:
    """Linear resampling between two grids with the same axes and physical extent (e.g. a coarser PET)."""
    out = volume
    for axis in (2, 0, 1):
        n_from, n_to = grid.shape[axis], target.shape[axis]
        if n_from == n_to:
            continue
        positions = (np.arange(n_to) + 0.5) * (n_from / n_to) - 0.5
        out = interpolate_axis(out, np.clip(positions, 0.0, n_from - 1.001), axis=axis)
    return np.ascontiguousarray(out, dtype=np.float32)


def blur_pet(suv: np.ndarray, grid: Grid, settings: ScannerSettings) -> np.ndarray:
    """The activity seen through the scanner's point-spread function (noise-free, on ``grid``)."""
    sigma = settings.pet_fwhm_mm * FWHM_TO_SIGMA / np.asarray(grid.spacing)
    return ndimage.gaussian_filter(suv, sigma, truncate=3.0)


def record_pet(
    blurred: np.ndarray, grid: Grid, settings: ScannerSettings, rng: np.random.Generator, pet_grid: Grid | None = None
) -> np.ndarray:
    """The PET image from :func:`blur_pet`'s output: optional coarser voxels, then count-like noise.

    ``blurred`` may be modified in place.
    """
    image = blurred
    if pet_grid is not None and tuple(pet_grid.shape) != tuple(grid.shape):
        image = resample_to(image, grid, pet_grid)
    noise = _correlated_noise(image.shape, settings.pet_noise_correlation, rng)
    scale = np.sqrt(np.maximum(image, 0.0) + 0.02)
    scale *= np.float32(settings.pet_noise)
    noise *= scale
    image += noise
    np.round(image, 3, out=image)
    return np.maximum(image, 0.0, out=image)
