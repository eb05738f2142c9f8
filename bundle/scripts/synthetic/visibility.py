# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Which drawn lesions a reader could see at the study's resolution: only those go into the label.

A lesion is labelled when it covers enough voxels (at least ``MIN_LABEL_VOXELS`` and ``MIN_LABEL_ML``) and,
in the blurred noise-free PET, its hottest voxel stands out of the tissue around it: at least
``MIN_VISIBLE_CONTRAST`` times that background and ``MIN_VISIBLE_SNR`` noise standard deviations above it.
Invisible lesions stay in the images (as a faint partial-volume smudge, or nothing) but not in the label,
as with a human reader.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scripts.synthetic.lesions import PaintedLesion

MIN_LABEL_VOXELS = 3
MIN_LABEL_ML = 0.1
MIN_VISIBLE_CONTRAST = 1.5
MIN_VISIBLE_SNR = 4.0
SHELL_VOXELS = 2


@dataclass(frozen=True)
class Visibility:
    """What a reader sees of one lesion in the blurred, noise-free PET."""

    voxels: int
    peak_suv: float  # hottest voxel inside the lesion after the blur (0 when it covers no voxel)
    background_suv: float  # median of the shell around it (other lesions excluded)
    visible: bool

    @property
    def contrast(self) -> float:
        """Peak over background."""
        return self.peak_suv / max(self.background_suv, 1e-3)


def assess_visibility(
    painted: list[PaintedLesion], blurred: np.ndarray, spacing: tuple[float, float, float], pet_noise: float
) -> list[Visibility]:
    """Judge every painted lesion on ``blurred`` (the PET after the resolution blur, before noise).

    Args:
        painted: the lesions as :func:`~scripts.synthetic.lesions.paint_lesions` returned them.
        blurred: noise-free PET on the grid of the masks.
        spacing: voxel size in mm of that grid.
        pet_noise: the scanner's noise factor (noise SD = ``pet_noise * sqrt(SUV)``).
    """
    voxel_ml = float(np.prod(spacing)) / 1000.0
    union = np.zeros(blurred.shape, dtype=bool)
    for lesion in painted:
        if lesion.voxels:
            union[lesion.box][lesion.mask] = True
    results = []
    for lesion in painted:
        if not lesion.voxels:
            results.append(Visibility(0, 0.0, 0.0, False))
            continue
        box = tuple(
            slice(max(s.start - SHELL_VOXELS, 0), min(s.stop + SHELL_VOXELS, n))
            for s, n in zip(lesion.box, blurred.shape, strict=True)
        )
        inner = np.zeros(tuple(s.stop - s.start for s in box), dtype=bool)
        offset = tuple(slice(a.start - b.start, a.stop - b.start) for a, b in zip(lesion.box, box, strict=True))
        inner[offset] = lesion.mask
        shell = ndimage.binary_dilation(inner, iterations=SHELL_VOXELS) & ~union[box]
        region = blurred[box]
        peak = float(region[inner].max())
        background = float(np.median(region[shell])) if shell.any() else 0.0
        noise = pet_noise * np.sqrt(max(background, 0.0) + 0.02)
        visible = (
            lesion.voxels >= MIN_LABEL_VOXELS
            and lesion.voxels * voxel_ml >= MIN_LABEL_ML
            and peak >= MIN_VISIBLE_CONTRAST * background
            and peak - background >= MIN_VISIBLE_SNR * noise
        )
        results.append(Visibility(lesion.voxels, peak, background, bool(visible)))
    return results
