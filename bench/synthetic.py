# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Benchmark of the synthetic PET/CT generator: seconds per subject, and the lesion statistics it produces.

``--statistics N`` instead generates N studies per tracer and prints the lesion statistics of their labels
(``scripts.synthetic.statistics``) beside the real PSMA fixture's (``../shared``, skipped when absent), as
JSON: the numbers of the table in ``docs/synthetic_data.md``.

Timing measures, on one core (numpy and scipy run single-threaded here):

* procedural subjects on the default grid (128 x 128 x 200 voxels, 4 x 4 x 5 mm), FDG and PSMA;
* the same with the PET written on the 2x coarser grid;
* organ-map subjects on real autoPET organ maps from ``../shared`` (skipped when absent): a full FDG grid
  (400 x 400 x ~326) and a PSMA grid.

Run from the repository root: ``.venv/bin/python bench/synthetic.py [--repeats N | --statistics N]``.
Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "bundle"))
ORGAN_MAPS = REPO_ROOT.parent / "shared" / "data" / "autopet_organ_labels"
REAL_LABEL = REPO_ROOT.parent / "shared" / "fixtures" / "autopet_psma_case" / "label.nii.gz"

import json  # noqa: E402

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

from scripts.synthetic import generate_study, plan_cohort, write_study  # noqa: E402
from scripts.synthetic.cohort import NEGATIVE_SHARE  # noqa: E402
from scripts.synthetic.organ_map import load_organ_map  # noqa: E402
from scripts.synthetic.statistics import label_components, lesion_statistics, summarize  # noqa: E402


def time_subjects(label: str, seeds: range, out: Path, **options: object) -> None:
    """Generate and write one subject per seed; print the median seconds per subject."""
    generate_times, write_times, voxels = [], [], 0
    for seed in seeds:
        start = time.perf_counter()
        study = generate_study(seed, **options)
        generated = time.perf_counter()
        write_study(study, out / label)
        generate_times.append(generated - start)
        write_times.append(time.perf_counter() - generated)
        voxels = study.ct.size
    generate_times.sort()
    write_times.sort()
    middle = len(seeds) // 2
    print(
        f"{label:<34} {voxels / 1e6:6.1f} Mvox  generate {generate_times[middle]:6.2f} s"
        f"  write {write_times[middle]:6.2f} s  total {generate_times[middle] + write_times[middle]:6.2f} s/subject"
        f"  (median of {len(seeds)})"
    )


def generator_statistics(n: int, tracer: str, shape: tuple[int, int, int], spacing: tuple[float, ...]) -> dict:
    """Lesion statistics of ``n`` positive studies (seeds 0..n-1) and the negative share of an n-study cohort."""
    studies = []
    for seed in range(n):
        study = generate_study(seed, tracer=tracer, shape=shape, spacing=spacing)
        studies.append(lesion_statistics(study.seg, study.suv, spacing, study.lesions))
    summary = summarize(studies)
    plans = plan_cohort(n, seed=0, negative_share=NEGATIVE_SHARE[tracer])
    summary["negative_share"] = sum(plan.negative for plan in plans) / len(plans)
    return summary


def real_label_statistics(path: Path) -> dict:
    """Lesion count and volumes of one real label (no PET available)."""
    image = nib.load(str(path))
    components, count = label_components(np.asanyarray(image.dataobj))
    voxel_ml = float(np.prod(image.header.get_zooms()[:3])) / 1000.0
    volumes = np.bincount(components.ravel())[1:] * voxel_ml
    p10, median, p90 = np.percentile(volumes, [10, 50, 90])
    return {
        "lesions": int(count),
        "ml_total": float(volumes.sum()),
        "ml_per_lesion": {"median": float(median), "p10": float(p10), "p90": float(p90)},
        "share_below_1_ml": float(np.mean(volumes < 1.0)),
        "share_1_to_10_ml": float(np.mean((volumes >= 1.0) & (volumes <= 10.0))),
        "share_above_10_ml": float(np.mean(volumes > 10.0)),
        "smallest_voxels": int(np.bincount(components.ravel())[1:].min()),
    }


def print_statistics(n: int) -> None:
    """The lesion statistics of both tracers on the default grid, and of the real fixture, as JSON."""
    shape, spacing = (128, 128, 200), (4.0, 4.0, 5.0)
    start = time.perf_counter()
    result = {
        "grid": {"shape": shape, "spacing_mm": spacing},
        **{tracer: generator_statistics(n, tracer, shape, spacing) for tracer in ("fdg", "psma")},
    }
    if REAL_LABEL.is_file():
        result["real_psma_fixture"] = real_label_statistics(REAL_LABEL)
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="subjects per procedural setting (3)")
    parser.add_argument("--statistics", type=int, metavar="N", help="print lesion statistics of N studies per tracer")
    args = parser.parse_args()
    if args.statistics:
        print_statistics(args.statistics)
        return
    print(f"cpu cores visible: {os.cpu_count()}; numpy/scipy calls used here are single-threaded")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        seeds = range(args.repeats)
        time_subjects("procedural fdg 128x128x200", seeds, out, tracer="fdg")
        time_subjects("procedural psma 128x128x200", seeds, out, tracer="psma")
        time_subjects("procedural fdg, PET 2x coarser", seeds, out, tracer="fdg", pet_coarse_factor=2.0)
        time_subjects("procedural fdg 48x48x64 (tests)", seeds, out, tracer="fdg", shape=(48, 48, 64))
        if not ORGAN_MAPS.is_dir():
            print(f"organ maps not found at {ORGAN_MAPS}: organ-map timings skipped")
        else:
            for name, tracer in (("fdg_000.nii.gz", "fdg"), ("psma_024.nii.gz", "psma")):
                start = time.perf_counter()
                organ_map = load_organ_map(ORGAN_MAPS / name)
                print(f"load {name:<29} {time.perf_counter() - start:6.2f} s")
                time_subjects(f"organ map {name} ({tracer})", range(1), out, tracer=tracer, organ_map=organ_map)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
