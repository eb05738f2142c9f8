# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Benchmark of the autoPET metrics on a full-size synthetic FDG case (400 x 400 x 326 voxels).

Builds a ground truth with many lesions of varied size spread over a body-shaped region and a
prediction that finds most of them (shifted, grown or shrunk), misses some and adds false positives,
saves both as NIfTI, then measures in fresh processes:

* ``compute``: :func:`scripts.evaluation.autopet_metrics.case_metrics` on the loaded masks (median of repeats);
* ``naive labelling``: what labelling both full volumes with ``scipy.ndimage.label`` alone would cost;
* ``cli``: the whole ``python -m scripts.evaluation.metrics`` run on the two files (wall time and peak RSS).

Run from the repository root: ``.venv/bin/python bench/metrics.py``. Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLE_ROOT = REPO_ROOT / "bundle"
FDG_SPACING_MM = (2.036, 2.036, 3.0)


def add_ball(mask: np.ndarray, centre: np.ndarray, radii: np.ndarray) -> None:
    """Set an axis-aligned ellipsoid (radii in voxels) in ``mask``, clipped at the borders."""
    low = np.maximum(np.floor(centre - radii).astype(int), 0)
    high = np.minimum(np.ceil(centre + radii).astype(int) + 1, mask.shape)
    if np.any(high <= low):
        return
    grids = np.ogrid[tuple(slice(a, b) for a, b in zip(low, high, strict=True))]
    inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii, strict=True)) <= 1.0
    mask[tuple(slice(a, b) for a, b in zip(low, high, strict=True))] |= inside


def make_case(shape: tuple[int, int, int], lesions: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic (gt, pred): ``lesions`` GT lesions (radius 1-25 voxels, most small), 80% found, extra FPs."""
    rng = np.random.default_rng(seed)
    gt = np.zeros(shape, dtype=bool)
    pred = np.zeros(shape, dtype=bool)
    size = np.asarray(shape, dtype=np.float64)
    body_radii = size * np.array([0.35, 0.3, 0.48])

    def body_point() -> np.ndarray:
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        return size / 2 + direction * body_radii * rng.uniform(0, 1) ** (1 / 3)

    for _ in range(lesions):
        centre = body_point()
        radii = np.minimum(rng.lognormal(mean=1.0, sigma=0.7, size=1) * rng.uniform(0.7, 1.3, size=3), 25.0)
        radii = np.maximum(radii, 0.6)
        add_ball(gt, centre, radii)
        if rng.random() < 0.8:  # found: shifted, grown or shrunk
            add_ball(pred, centre + rng.normal(scale=1.0, size=3), radii * rng.uniform(0.7, 1.3))
    for _ in range(lesions // 3):  # false positives, e.g. physiological uptake
        add_ball(pred, body_point(), np.maximum(rng.lognormal(mean=1.2, sigma=0.6, size=3), 0.6))
    return gt, pred


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(folder: Path, repeats: int) -> None:
    """Load the two masks and time the metrics in this (fresh) process; print JSON."""
    sys.path.insert(0, str(BUNDLE_ROOT))
    from scipy import ndimage

    from scripts.evaluation.autopet_metrics import CONNECTIVITY_18, case_metrics
    from scripts.evaluation.mask_scoring import load_mask

    start = time.perf_counter()
    gt, pred = load_mask(folder / "gt" / "case.nii.gz"), load_mask(folder / "pred" / "case.nii.gz")
    load_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        metrics = case_metrics(gt.voxels, pred.voxels, pred.voxel_ml)
        times.append(time.perf_counter() - start)
    rss_metrics = peak_rss_mb()
    start = time.perf_counter()
    ndimage.label(gt.voxels, structure=CONNECTIVITY_18)
    ndimage.label(pred.voxels, structure=CONNECTIVITY_18)
    naive_s = time.perf_counter() - start
    print(
        json.dumps(
            {
                "load_s": load_s,
                "compute_s": float(np.median(times)),
                "compute_runs_s": times,
                "peak_rss_mb_load_and_compute": rss_metrics,
                "naive_label_s": naive_s,
                "metrics": metrics.as_row(),
            }
        )
    )


def run_cli(folder: Path) -> dict[str, float]:
    """Run the CLI in a fresh process; return wall time and that process's peak RSS."""
    code = (
        "import resource, sys; sys.path.insert(0, sys.argv[1]); from scripts.evaluation.metrics import main; "
        "status = main(sys.argv[2:]); "
        "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(status)"
    )
    args = ["--gt", str(folder / "gt"), "--pred", str(folder / "pred"), "--out", str(folder / "out" / "m.csv")]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, str(BUNDLE_ROOT), *args], capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - start
    peak = next(line for line in done.stdout.splitlines() if line.startswith("PEAK_RSS_KB"))
    return {"wall_s": wall, "peak_rss_mb": int(peak.split()[1]) / 1024.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[400, 400, 326])
    parser.add_argument("--lesions", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.repeats)
        return

    sys.path.insert(0, str(BUNDLE_ROOT))
    from scripts.atomic_io import save_nifti

    shape = tuple(args.shape)
    gt, pred = make_case(shape, args.lesions, args.seed)  # type: ignore[arg-type]
    affine = np.diag([*FDG_SPACING_MM, 1.0])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        save_nifti(gt, affine, folder / "gt" / "case.nii.gz", dtype=np.uint8)
        save_nifti(pred, affine, folder / "pred" / "case.nii.gz", dtype=np.uint8)
        measured = subprocess.run(
            [sys.executable, __file__, "--worker", str(folder), "--repeats", str(args.repeats)],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(measured.stdout)
        cli = run_cli(folder)

    m = figures["metrics"]
    print(f"case: {shape[0]}x{shape[1]}x{shape[2]} voxels ({np.prod(shape) / 1e6:.1f} M), spacing {FDG_SPACING_MM} mm")
    print(
        f"      GT {m['gt_lesions']} lesions / {m['gt_ml']:.1f} ml, prediction {m['pred_components']} components "
        f"/ {m['pred_ml']:.1f} ml; Dice {m['dice']:.4f}, FPV {m['fpv_ml']:.2f} ml, FNV {m['fnv_ml']:.2f} ml"
    )
    print(f"load both NIfTI masks (gzip):     {figures['load_s']:.2f} s")
    runs = ", ".join(f"{t:.2f}" for t in figures["compute_runs_s"])
    print(f"case_metrics (median of {args.repeats}):     {figures['compute_s']:.2f} s  (runs: {runs})")
    print(f"peak RSS, load + case_metrics:    {figures['peak_rss_mb_load_and_compute']:.0f} MB")
    print(f"for reference, scipy label of both full volumes: {figures['naive_label_s']:.2f} s")
    print(f"CLI end to end (fresh process):   {cli['wall_s']:.2f} s wall, peak RSS {cli['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
