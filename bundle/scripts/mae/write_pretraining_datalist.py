# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Write an MAE pretraining datalist of PET/CT and CT-only studies (see :mod:`scripts.mae.pretraining_datalist`).

Run from ``bundle/``::

    python -m scripts.mae.write_pretraining_datalist --pet-ct DATASET/imagesTr --ct-only LONGITUDINAL_CT
        --base-dir DATASET --validation-fraction 0.05 --output DATASET/datalist_pretrain.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from scripts.atomic_io import write_json
from scripts.errors import InputDataError
from scripts.mae.pretraining_datalist import find_ct_files, find_pet_ct_studies, pretraining_datalist, relative_datalist


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m scripts.mae.write_pretraining_datalist``."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.mae.write_pretraining_datalist",
        description="Write an MAE pretraining datalist of PET/CT studies and CT-only studies.",
    )
    parser.add_argument("--pet-ct", nargs="*", default=[], type=Path, help="folders of PET/CT studies (paired by name)")
    parser.add_argument("--ct-only", nargs="*", default=[], type=Path, help="folders of CT-only volumes")
    parser.add_argument("--ct-only-pattern", default="*", help="file-name pattern of CT-only volumes (default *)")
    parser.add_argument("--base-dir", type=Path, help="paths are written relative to it (default: the output folder)")
    parser.add_argument("--validation-fraction", type=float, default=0.0, help="fraction held out (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the hold-out draw (default 0)")
    parser.add_argument("--output", required=True, type=Path, help="the datalist JSON to write")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (1 for bad input, with the problem on stderr)."""
    args = build_parser().parse_args(argv)
    try:
        pet_ct = [study for folder in args.pet_ct for study in find_pet_ct_studies(folder)]
        ct_only = [path for folder in args.ct_only for path in find_ct_files(folder, args.ct_only_pattern)]
        datalist = pretraining_datalist(pet_ct, ct_only, args.validation_fraction, args.seed)
    except (InputDataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    base_dir = args.base_dir if args.base_dir is not None else args.output.parent
    write_json(relative_datalist(datalist, base_dir), args.output)
    print(
        f"{args.output}: {len(pet_ct)} PET/CT + {len(ct_only)} CT-only studies "
        f"({len(datalist['training'])} training, {len(datalist['validation'])} validation)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
