# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Command line: ``python -m scripts.synthetic --out DIR --n N --seed S [options]`` (run from ``bundle/``)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from scripts.errors import InputDataError, say
from scripts.synthetic.cohort import DEFAULT_SHAPE, MANIFEST_FILE, generate_cohort
from scripts.synthetic.uptake import TRACERS


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the generator."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.synthetic",
        description="Write synthetic whole-body PET/CT studies in the autoPET layout "
        "(OUT/<patient>/<study>/CTres.nii.gz, SUV.nii.gz, SEG.nii.gz).",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--n", type=int, required=True, help="number of studies")
    parser.add_argument("--seed", type=int, required=True, help="random seed (same seed, same files)")
    parser.add_argument("--tracer", choices=sorted(TRACERS), default="fdg", help="tracer (default: fdg)")
    parser.add_argument(
        "--shape",
        type=int,
        nargs=3,
        metavar=("X", "Y", "Z"),
        help=f"CT grid in voxels, LAS order (default: {' '.join(map(str, DEFAULT_SHAPE))})",
    )
    parser.add_argument(
        "--spacing",
        type=float,
        nargs=3,
        metavar=("X", "Y", "Z"),
        help="voxel size in mm (default: a 512 x 512 x 1000 mm field of view over --shape)",
    )
    parser.add_argument(
        "--organs",
        nargs="+",
        metavar="LABELMAP",
        help="organ-label map(s) or a folder of them (autoPET ids 0-10); studies use their grids",
    )
    parser.add_argument(
        "--negative-share",
        type=float,
        help="share of lesion-free studies (default: the tracer's share in autoPET, FDG 0.51, PSMA 0.10)",
    )
    parser.add_argument(
        "--longitudinal-share", type=float, default=0.2, help="share of patients with a follow-up study (0.2)"
    )
    parser.add_argument("--pet-coarse", action="store_true", help="write the PET on a coarser grid than the CT")
    parser.add_argument(
        "--pet-coarse-factor", type=float, default=2.0, help="PET voxel size / CT voxel size with --pet-coarse (2.0)"
    )
    parser.add_argument("--max-lesions", type=int, default=60, help="most lesions per study (60)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the generator; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.organs and (args.shape or args.spacing):
        parser.error("--shape and --spacing cannot be combined with --organs: the organ map's grid is used")
    if args.n < 1:
        parser.error("--n must be at least 1")
    if args.max_lesions < 1:
        parser.error("--max-lesions must be at least 1")
    start = time.perf_counter()
    try:
        folders = generate_cohort(
            args.out,
            args.n,
            args.seed,
            tracer=args.tracer,
            shape=tuple(args.shape or DEFAULT_SHAPE),
            spacing=args.spacing,
            organ_maps=args.organs,
            negative_share=args.negative_share,
            longitudinal_share=args.longitudinal_share,
            pet_coarse=args.pet_coarse,
            pet_coarse_factor=args.pet_coarse_factor,
            max_lesions=args.max_lesions,
        )
    except (InputDataError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for folder in folders:
        say(str(folder))
    elapsed = time.perf_counter() - start
    print(f"{len(folders)} studies in {elapsed:.1f} s; manifest: {args.out}/{MANIFEST_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
