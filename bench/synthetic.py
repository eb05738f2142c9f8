# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Benchmark of the synthetic PET/CT generator: seconds per subject, split into generating and writing.

Measures, on one core (numpy and scipy run single-threaded here):

* procedural subjects on the default grid (128 x 128 x 200 voxels, 4 x 4 x 5 mm), FDG and PSMA;
* the same with the PET written on the 2x coarser grid;
* organ-map subjects on real autoPET organ maps from ``../shared`` (skipped when absent): a full FDG grid
  (400 x 400 x ~326) and a PSMA grid.

Run from the repository root: ``.venv/bin/python bench/synthetic.py [--repeats N]``. Prints figures;
it is not a test.
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

from scripts.synthetic import generate_study, write_study  # noqa: E402
from scripts.synthetic.organ_map import load_organ_map  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="subjects per procedural setting (3)")
    args = parser.parse_args()
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
