# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Per-study PNG figures in the spirit of the paper's Figures 2-3: PET MIPs plus CT/PET slices with contours.

Each figure shows, for one study:

* coronal and sagittal PET maximum-intensity projections (inverted grey, SUV window), with the outlines of
  the projected ground truth and prediction and a dashed line at the level of the axial slices;
* an axial CT slice and an axial PET slice through the largest lesion (largest 18-connected component of the
  ground truth, or of the prediction when there is no ground-truth lesion; the body centre when neither has
  one), with the ground-truth and predicted contours in two colours;
* the study's Dice / FPV / FNV (ml, from :func:`scripts.evaluation.autopet_metrics.case_metrics`) in the title when a
  ground truth is given, the predicted volume otherwise.

Volumes are reoriented to RAS with ``nibabel.as_closest_canonical`` and drawn in millimetres, so the head is at
the top, the aspect ratio follows the voxel spacing and the patient's right is on the viewer's left
(radiological convention). The PET (and any mask on another grid) is resampled onto the CT grid.

CLI: ``python -m scripts.evaluation.figures --items DATALIST_OR_FOLDER --pred PRED_DIR --out OUT_DIR``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scripts.atomic_io import atomic_path
from scripts.data.inference_inputs import ct_and_pet_paths, find_inference_items, study_name
from scripts.errors import InputDataError, say
from scripts.evaluation.autopet_metrics import case_metrics
from scripts.evaluation.figure_volumes import Focus, StudyVolumes, choose_focus, load_study

PathLike = str | os.PathLike

# PET display window in SUV (inverted grey: SUV >= the upper bound is black).
DEFAULT_SUV_WINDOW = (0.0, 10.0)

# CT display window in HU (soft tissue: level 40, width 400).
DEFAULT_CT_WINDOW = (-160.0, 240.0)

# Contour colours: ground truth (sky blue) and prediction (red); both read on black CT and on white PET.
GT_COLOUR, PRED_COLOUR = "#00b4ff", "#ff2a2a"


def _format(value: float, digits: int, unit: str = "") -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}{unit}"


def figure_title(name: str, gt: np.ndarray | None, pred: np.ndarray | None, voxel_ml: float) -> str:
    """The figure's title: the study name plus Dice / FPV / FNV with a ground truth, the predicted volume without.

    Dice is given to 3 decimals and volumes to 2 (ml); Dice and FNV read ``n/a`` for a negative study.
    """
    if pred is None:
        return name
    if gt is None:
        summary = case_metrics(np.zeros_like(pred), pred, voxel_ml)
        return f"{name}  |  prediction {summary.pred_ml:.2f} ml in {summary.pred_components} component(s)"
    metrics = case_metrics(gt, pred, voxel_ml)
    return (
        f"{name}  |  Dice {_format(metrics.dice, 3)}  |  FPV {_format(metrics.fpv_ml, 2, ' ml')}"
        f"  |  FNV {_format(metrics.fnv_ml, 2, ' ml')}"
    )


def _focus_caption(focus: Focus, voxel_ml: float) -> str:
    if focus.source == "body centre":
        return "no lesion: slices through the body centre"
    what = "ground-truth lesion" if focus.source == "ground truth" else "predicted component"
    return f"slices through the largest {what} ({focus.voxels * voxel_ml:.2f} ml)"


def _extent(length_x: int, spacing_x: float, length_y: int, spacing_y: float) -> tuple[float, float, float, float]:
    """The imshow extent in mm (voxel edges) for an image whose columns run along x and rows along y."""
    return (-0.5 * spacing_x, (length_x - 0.5) * spacing_x, -0.5 * spacing_y, (length_y - 0.5) * spacing_y)


def _draw_panel(
    axes: Axes,
    image: np.ndarray,
    spacing: tuple[float, float],
    window: tuple[float, float],
    cmap: str,
    masks: Sequence[tuple[np.ndarray | None, str]],
    title: str,
) -> None:
    """Draw a 2D (columns, rows) image in mm with mask contours; rows grow upwards (origin lower)."""
    width, height = image.shape
    axes.imshow(
        image.T,
        cmap=cmap,
        vmin=window[0],
        vmax=window[1],
        origin="lower",
        extent=_extent(width, spacing[0], height, spacing[1]),
        interpolation="nearest",
    )
    cols, rows = np.arange(width) * spacing[0], np.arange(height) * spacing[1]
    for mask, colour in masks:
        if mask is not None and mask.any():
            axes.contour(cols, rows, mask.T.astype(np.float32), levels=[0.5], colors=colour, linewidths=1.0)
    axes.set_aspect("equal")
    axes.set_title(title, fontsize=9)
    axes.set_xticks([])
    axes.set_yticks([])


def _draw_figure(
    volumes: StudyVolumes, focus: Focus, title: str, suv_window: tuple[float, float], ct_window: tuple[float, float]
) -> Figure:
    """Lay out the four panels (coronal and sagittal PET MIPs, axial CT and PET at the focus), legend and title."""
    sx, sy, sz = volumes.spacing
    z = focus.voxel[2]
    gt, pred = volumes.gt, volumes.pred
    nx, ny, nz = volumes.ct.shape
    figure = Figure(figsize=(13, 8), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)  # explicit Agg canvas: no pyplot, no global figure state, no display needed
    grid = figure.add_gridspec(2, 3, width_ratios=[nx * sx, ny * sy, max(nx * sx, ny * sy) * 0.9])
    coronal, sagittal = figure.add_subplot(grid[:, 0]), figure.add_subplot(grid[:, 1])
    ct_axial, pet_axial = figure.add_subplot(grid[0, 2]), figure.add_subplot(grid[1, 2])
    suv = f"SUV {suv_window[0]:g}-{suv_window[1]:g}"

    def mip(mask: np.ndarray | None, axis: int) -> np.ndarray | None:
        return None if mask is None else mask.any(axis=axis)

    _draw_panel(
        coronal,
        volumes.pet.max(axis=1),
        (sx, sz),
        suv_window,
        "gray_r",
        [(mip(gt, 1), GT_COLOUR), (mip(pred, 1), PRED_COLOUR)],
        f"PET MIP, coronal ({suv})",
    )
    _draw_panel(
        sagittal,
        volumes.pet.max(axis=0),
        (sy, sz),
        suv_window,
        "gray_r",
        [(mip(gt, 0), GT_COLOUR), (mip(pred, 0), PRED_COLOUR)],
        f"PET MIP, sagittal ({suv})",
    )
    slice_masks = [
        (None if gt is None else gt[:, :, z], GT_COLOUR),
        (None if pred is None else pred[:, :, z], PRED_COLOUR),
    ]
    _draw_panel(
        ct_axial,
        volumes.ct[:, :, z],
        (sx, sy),
        ct_window,
        "gray",
        slice_masks,
        f"CT, axial slice {z} (HU {ct_window[0]:g} to {ct_window[1]:g})",
    )
    _draw_panel(
        pet_axial, volumes.pet[:, :, z], (sx, sy), suv_window, "gray_r", slice_masks, f"PET, axial slice {z} ({suv})"
    )
    level = z * sz
    for axes in (coronal, sagittal):
        axes.axhline(level, color="#ffa500", linestyle="--", linewidth=0.8)
    # Radiological convention: patient's right (low x in RAS) on the viewer's left, anterior on the left in
    # the sagittal view (the patient faces left); head at the top everywhere (origin lower, z grows upwards).
    for axes in (coronal, ct_axial, pet_axial):
        axes.invert_xaxis()
    sagittal.invert_xaxis()
    for axes, (letter_left, letter_right) in ((coronal, ("R", "L")), (ct_axial, ("R", "L")), (sagittal, ("A", "P"))):
        for position, letter in ((0.02, letter_left), (0.98, letter_right)):
            axes.text(
                position, 0.5, letter, transform=axes.transAxes, ha="center", va="center", fontsize=8, color="#ffa500"
            )
    handles = [Line2D([], [], color="#ffa500", linestyle="--", linewidth=0.8, label="axial slice level")]
    if gt is not None:
        handles.insert(0, Line2D([], [], color=GT_COLOUR, linewidth=1.5, label="ground truth"))
    if pred is not None:
        handles.insert(1 if gt is not None else 0, Line2D([], [], color=PRED_COLOUR, linewidth=1.5, label="prediction"))
    figure.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9, frameon=False)
    figure.suptitle(f"{title}\n{_focus_caption(focus, volumes.voxel_ml)}", fontsize=11)
    return figure


def render_study_figure(
    ct_path: PathLike,
    pet_path: PathLike,
    out_png: PathLike,
    pred_path: PathLike | None = None,
    label_path: PathLike | None = None,
    suv_window: tuple[float, float] = DEFAULT_SUV_WINDOW,
    ct_window: tuple[float, float] = DEFAULT_CT_WINDOW,
    name: str | None = None,
) -> Path:
    """Write one study's figure as a PNG (atomically); the title is also stored in the PNG's ``Title`` text field.

    Args:
        ct_path: CT NIfTI (its grid is the display grid).
        pet_path: PET (SUV) NIfTI; resampled onto the CT grid when its grid differs.
        out_png: the PNG to write; parent folders are created.
        pred_path: optional predicted lesion mask (0/1).
        label_path: optional ground-truth lesion mask (0/1); with it the title carries Dice / FPV / FNV.
        suv_window: PET display window (SUV), inverted grey.
        ct_window: CT display window (HU).
        name: study name in the title; default :func:`scripts.data.inference_inputs.study_name` of the CT.

    Returns:
        ``Path(out_png)``.

    Raises:
        InputDataError: a file is missing, unreadable, not 3D, non-finite, or a mask is not 0/1.
    """
    if not suv_window[1] > suv_window[0] or not ct_window[1] > ct_window[0]:
        raise ValueError(f"display windows need low < high, got SUV {suv_window} and CT {ct_window}")
    volumes = load_study(ct_path, pet_path, pred_path, label_path)
    title = figure_title(name or study_name(ct_path), volumes.gt, volumes.pred, volumes.voxel_ml)
    focus = choose_focus(volumes.ct, volumes.gt, volumes.pred)
    figure = _draw_figure(volumes, focus, title, tuple(suv_window), tuple(ct_window))
    with atomic_path(out_png) as tmp:
        figure.savefig(
            tmp, format="png", metadata={"Title": title, "Description": _focus_caption(focus, volumes.voxel_ml)}
        )
    return Path(out_png)


def render_figures(
    items: Iterable[Mapping],
    pred_dir: PathLike | None,
    out_dir: PathLike,
    suv_window: tuple[float, float] = DEFAULT_SUV_WINDOW,
    ct_window: tuple[float, float] = DEFAULT_CT_WINDOW,
) -> list[Path]:
    """One figure per data item: ``out_dir/<study_name(ct)>.png``.

    Args:
        items: data items ``{"image": [ct, pet], "label": optional, ...}`` (e.g. a loaded datalist).
        pred_dir: folder holding ``<study_name(ct)>.nii.gz`` per study, or ``None`` for image-only figures.
        out_dir: where the PNGs go.
        suv_window: PET display window (SUV).
        ct_window: CT display window (HU).

    Returns:
        The written PNG paths, in item order.
    """
    written = []
    for item in items:
        ct, pet = ct_and_pet_paths(item)
        name = study_name(ct)
        pred = None if pred_dir is None else Path(pred_dir) / f"{name}.nii.gz"
        written.append(
            render_study_figure(
                ct, pet, Path(out_dir) / f"{name}.png", pred, item.get("label"), suv_window, ct_window, name=name
            )
        )
    return written


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the figure CLI."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.evaluation.figures",
        description="Write one PNG per study: PET MIPs and CT/PET slices through the largest lesion with "
        "ground-truth and predicted contours, and Dice / FPV / FNV in the title.",
    )
    parser.add_argument("--items", required=True, help="datalist JSON, dataset/release folder or one study")
    parser.add_argument("--pred", help="folder of predicted masks <study>.nii.gz (omit for image-only figures)")
    parser.add_argument("--out", required=True, help="output folder for the PNGs")
    parser.add_argument("--datalist-key", default="testing", help="datalist section to read (default: testing)")
    parser.add_argument("--suv-window", type=float, nargs=2, default=DEFAULT_SUV_WINDOW, metavar=("LOW", "HIGH"))
    parser.add_argument("--ct-window", type=float, nargs=2, default=DEFAULT_CT_WINDOW, metavar=("LOW", "HIGH"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (2 for bad input, with the offending file named)."""
    args = build_parser().parse_args(argv)
    try:
        items = find_inference_items(args.items, args.datalist_key)
        written = render_figures(items, args.pred, args.out, tuple(args.suv_window), tuple(args.ct_window))
    except InputDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    say(f"{len(written)} figure(s) written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
