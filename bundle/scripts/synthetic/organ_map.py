# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Real organ-label maps as the anatomy's backbone: loading, fitting the body frame, splitting organs.

A map (autoPET/TotalSegmentator ids 1-10, see ``tissues.Tissue``) fixes where the organs are. The
body frame of the procedural phantom is fitted to it from landmarks (organ centroids, brain top, lung
apex and base), so that the outline, skeleton, vessels and lesion sites drawn around it line up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage
from scripts.data.volume_checks import check_affine, spatial_shape
from scripts.data.volumes import read_volume
from scripts.errors import InputDataError
from scripts.synthetic.body import TorsoProfile
from scripts.synthetic.frame import BodyFrame
from scripts.synthetic.grid import Grid, Reorientation, las_view
from scripts.synthetic.shapes import Canvas
from scripts.synthetic.tissues import ORGAN_MAP_IDS, Tissue
from scripts.synthetic.traits import PatientTraits

# Organs whose position is stable enough to anchor the frame (stomach, prostate and glands are not).
ANCHOR_ORGANS = (Tissue.BRAIN, Tissue.LUNG, Tissue.HEART, Tissue.LIVER, Tissue.SPLEEN, Tissue.KIDNEY, Tissue.BLADDER)
MIDLINE_ORGANS = (Tissue.BRAIN, Tissue.LUNG, Tissue.KIDNEY, Tissue.BLADDER)
LATERAL_MARGIN_MM = 24.0  # ribs and chest-wall muscle lateral to the outermost organ
ANTERIOR_MARGIN_MM = 20.0
POSTERIOR_MARGIN_MM = 40.0


@dataclass
class OrganMap:
    """An organ-label map in LAS order, with the file's own grid to write the outputs on."""

    path: str
    labels: np.ndarray  # uint8, LAS order
    grid: Grid  # LAS grid of ``labels``
    reorientation: Reorientation
    affine: np.ndarray  # the file's affine
    shape: tuple[int, int, int]  # the file's shape


def load_organ_map(path: str | os.PathLike) -> OrganMap:
    """Read an organ-label map, check it and bring it into LAS order.

    Raises:
        InputDataError: the file cannot be read, is not 3D, has a singular affine, or holds values other
            than the integers 0-10.
    """
    image = read_volume(path, "organ-label map")
    data = image.array
    shape = spatial_shape(data, path)
    data = data.reshape(shape)
    check_affine(image.affine, path)
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.isfinite(data)) or not np.all(data == np.round(data)):
            raise InputDataError(path, "organ labels must be whole numbers 0-10")
    values = np.unique(data)
    if values.min() < 0 or values.max() > max(ORGAN_MAP_IDS):
        raise InputDataError(
            path, f"organ labels must be 0-10 (autoPET organ ids), found {values.min():g}-{values.max():g}"
        )
    if values.max() == 0:
        raise InputDataError(path, "the organ-label map holds no organ (all zero)")
    grid, reorientation = las_view(image.affine, shape)
    labels = reorientation.apply(data.astype(np.uint8))
    return OrganMap(str(path), labels, grid, reorientation, np.asarray(image.affine, dtype=np.float64), shape)


@dataclass(frozen=True)
class OrganStats:
    """Where one organ lies, in patient-frame mm (x, y, height)."""

    centroid: np.ndarray
    low: np.ndarray  # 1st percentile per axis
    high: np.ndarray  # 99th percentile per axis
    cut: bool  # touches the top or bottom slice (partly outside the field of view)


def organ_stats(labels: np.ndarray, grid: Grid) -> dict[int, OrganStats]:
    """Centroid and extent of every organ id present in ``labels`` (LAS order)."""
    stats = {}
    spacing = np.asarray(grid.spacing)
    boxes = ndimage.find_objects(np.where(labels <= max(ORGAN_MAP_IDS), labels, 0))
    for organ in ORGAN_MAP_IDS:
        if organ > len(boxes) or boxes[organ - 1] is None:
            continue
        box = boxes[organ - 1]
        index = np.nonzero(labels[box] == organ)
        if index[0].size < 8:
            continue
        offset = np.array([s.start for s in box], dtype=np.float64)
        points = (np.stack(index, axis=1) + offset) * spacing
        cut = bool(box[2].start == 0 or box[2].stop == labels.shape[2])
        stats[organ] = OrganStats(points.mean(0), np.percentile(points, 1, 0), np.percentile(points, 99, 0), cut)
    return stats


def fit_frame(organ_map: OrganMap, traits: PatientTraits, template: dict[int, OrganStats]) -> BodyFrame:
    """Fit the body frame (depth mapping, midline, width) to the organs of ``organ_map``.

    ``template`` is the standard procedural adult's organ statistics (:func:`scripts.synthetic.anatomy.template_stats`).
    """
    grid = organ_map.grid
    measured = organ_stats(organ_map.labels, grid)
    usable = [o for o in ANCHOR_ORGANS if o in measured and o in template and not measured[o].cut]

    width_scale = traits.width_scale
    if Tissue.LUNG in usable:
        lungs, model = measured[Tissue.LUNG], template[Tissue.LUNG]
        width_scale = float(np.clip((lungs.high[0] - lungs.low[0]) / (model.high[0] - model.low[0]), 0.75, 1.3))

    # Depth mapping: template depth u = -height; pairs of (u, measured height).
    pairs = [(-template[o].centroid[2], measured[o].centroid[2]) for o in usable]
    if Tissue.BRAIN in usable:
        pairs.append((-template[Tissue.BRAIN].high[2], measured[Tissue.BRAIN].high[2]))
    if Tissue.LUNG in usable:
        pairs.append((-template[Tissue.LUNG].high[2], measured[Tissue.LUNG].high[2]))
        pairs.append((-template[Tissue.LUNG].low[2], measured[Tissue.LUNG].low[2]))
    u_knots, si_knots, height_scale = _monotone_depth_knots(pairs, grid, traits.height_scale)

    centre_x, centre_y = _body_centre(measured, template, usable, width_scale, grid)
    return BodyFrame.build(
        grid, u_knots, si_knots, np.zeros(1), np.array([centre_x]), np.array([centre_y]), width_scale, height_scale
    )


def _body_centre(
    measured: dict[int, OrganStats], template: dict[int, OrganStats], usable: list[int], width_scale: float, grid: Grid
) -> tuple[float, float]:
    """Midline x and body-centre y (mm): the median of the estimates from the organs with a known offset.

    Paired organs count by the middle of their extent, and only when both are there (their width is
    plausible): a single kidney after nephrectomy would otherwise pull the midline sideways.
    """
    xs, ys = [], []
    for organ in [o for o in MIDLINE_ORGANS if o in usable] or usable:
        m, t = measured[organ], template[organ]
        if organ in (Tissue.LUNG, Tissue.KIDNEY):
            ratio = (m.high[0] - m.low[0]) / max((t.high[0] - t.low[0]) * width_scale, 1e-6)
            if not 0.7 <= ratio <= 1.4:
                continue
            mx, tx = 0.5 * (m.low[0] + m.high[0]), 0.5 * (t.low[0] + t.high[0])
        else:
            mx, tx = m.centroid[0], t.centroid[0]
        xs.append(mx - tx * width_scale)
        ys.append(m.centroid[1] - t.centroid[1] * width_scale)
    if not xs:
        extent = np.asarray(grid.shape) * np.asarray(grid.spacing)
        return float(extent[0] / 2), float(extent[1] / 2)
    return float(np.median(xs)), float(np.median(ys))


def _monotone_depth_knots(
    pairs: list[tuple[float, float]], grid: Grid, default_scale: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Depth-to-height knots through the landmark pairs, dropping those that break a plausible slope."""
    pairs = sorted(pairs)
    kept: list[tuple[float, float]] = []
    for u, si in pairs:
        if kept:
            du, dsi = u - kept[-1][0], kept[-1][1] - si
            if du < 5.0 or not 0.6 <= dsi / du <= 1.6:
                continue
        kept.append((u, si))
    if len(kept) >= 2:
        u_knots = np.array([p[0] for p in kept])
        si_knots = np.array([p[1] for p in kept])
        scale = float(np.clip(-np.polyfit(u_knots, si_knots, 1)[0], 0.75, 1.25))
        return u_knots, si_knots, scale
    if len(kept) == 1:
        return np.array([kept[0][0]]), np.array([kept[0][1]]), default_scale
    top = (grid.shape[2] - 1) * grid.spacing[2] - 20.0
    return np.array([0.0]), np.array([top]), default_scale


@dataclass(frozen=True)
class OrganBox:
    """Per-slice bounding box (patient-frame mm) of all mapped organs, and which slices hold lung."""

    x_low: np.ndarray
    x_high: np.ndarray
    y_low: np.ndarray
    y_high: np.ndarray
    has_organs: np.ndarray
    has_lungs: np.ndarray


def organ_box(labels: np.ndarray, grid: Grid) -> OrganBox:
    """The per-slice extent of the organs in ``labels`` (LAS order)."""
    present = labels > 0
    along_x = present.any(axis=1)  # (nx, nz)
    along_y = present.any(axis=0)  # (ny, nz)
    x_axis, y_axis, _ = grid.axes_mm()
    has = along_x.any(axis=0)
    x_low = np.where(has, x_axis[np.argmax(along_x, axis=0)], np.nan)
    x_high = np.where(has, x_axis[len(x_axis) - 1 - np.argmax(along_x[::-1], axis=0)], np.nan)
    y_low = np.where(has, y_axis[np.argmax(along_y, axis=0)], np.nan)
    y_high = np.where(has, y_axis[len(y_axis) - 1 - np.argmax(along_y[::-1], axis=0)], np.nan)
    has_lungs = (labels == Tissue.LUNG).any(axis=(0, 1))
    return OrganBox(x_low, x_high, y_low, y_high, has, has_lungs)


def fit_profile_to_organs(profile: TorsoProfile, box: OrganBox, slice_mm: float) -> TorsoProfile:
    """Adapt the torso cross-section to the organs: hug them at lung levels, hold them everywhere.

    At lung levels the chest wall follows the real lungs (a margin for ribs and muscle around the organ
    box); elsewhere the standard torso is only enlarged where organs would stick out of it.
    """
    cx, cy = profile.cx.copy(), profile.cy.copy()
    half_width, half_depth = profile.half_width.copy(), profile.half_depth.copy()
    lungs = box.has_lungs & profile.present
    cx[lungs] = 0.5 * (box.x_low[lungs] + box.x_high[lungs])
    half_width[lungs] = 0.5 * (box.x_high[lungs] - box.x_low[lungs]) + LATERAL_MARGIN_MM
    back, front = box.y_low[lungs] - POSTERIOR_MARGIN_MM, box.y_high[lungs] + ANTERIOR_MARGIN_MM
    cy[lungs], half_depth[lungs] = 0.5 * (back + front), 0.5 * (front - back)
    others = box.has_organs & ~lungs
    need_width = np.maximum(cx - box.x_low, box.x_high - cx) + LATERAL_MARGIN_MM
    need_depth = np.maximum(cy - box.y_low + POSTERIOR_MARGIN_MM, box.y_high - cy + ANTERIOR_MARGIN_MM)
    half_width[others] = np.maximum(half_width[others], need_width[others])
    half_depth[others] = np.maximum(half_depth[others], need_depth[others])
    size = max(1, int(round(40.0 / slice_mm)))
    smooth = [ndimage.uniform_filter1d(v, size, mode="nearest") for v in (cx, cy, half_width, half_depth)]
    return replace(profile, cx=smooth[0], cy=smooth[1], half_width=smooth[2], half_depth=smooth[3])


def split_mapped_organs(canvas: Canvas) -> None:
    """Give copied organs an inside: blood in the heart chambers, urine in the renal pelves."""
    for organ, inner, depth_mm in ((Tissue.HEART, Tissue.BLOOD, 9.0), (Tissue.KIDNEY, Tissue.URINE, 11.0)):
        mask = canvas.tissue == organ
        if not mask.any():
            continue
        box = ndimage.find_objects(mask.astype(np.uint8))[0]
        local = mask[box]
        depth = ndimage.distance_transform_edt(np.pad(local, 1), sampling=canvas.spacing)[1:-1, 1:-1, 1:-1]
        region = canvas.tissue[box]
        region[local & (depth > depth_mm)] = inner
