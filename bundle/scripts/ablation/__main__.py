# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Command line: ``python -m scripts.ablation --data DATASET --out DIR [options]`` (run from ``bundle/``)."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from scripts.ablation.protocol import (
    DEFAULT_ARMS,
    Arm,
    Budget,
    Protocol,
    Runtime,
    check_pretrain_datalist,
    labelled_subset,
    load_fold,
    resolve_budget,
)
from scripts.ablation.report import SUMMARY_MD
from scripts.ablation.workflows import run_ablation
from scripts.errors import InputDataError

CONFIG_DEFAULT = "default: the config's"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m scripts.ablation``."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.ablation",
        description="The paper's Table 2 ablation: scratch vs MAE pretraining for each xLSTM placement, same data, "
        "same budget, several seeds, through the bundle's pretrain/train/evaluate configs. Writes ablation_runs.csv, "
        "ablation.csv and ablation.md under --out; rerunning with the same --out skips finished runs.",
    )
    data = parser.add_argument_group("data and protocol")
    data.add_argument(
        "--data", required=True, type=Path, help="dataset folder written by python -m scripts.data.prepare"
    )
    data.add_argument("--out", required=True, type=Path, help="output folder (reused to resume)")
    data.add_argument(
        "--arms", nargs="+", default=list(DEFAULT_ARMS), help=f"variant[+ssl] (default: {' '.join(DEFAULT_ARMS)})"
    )
    data.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default: 0 1 2)")
    data.add_argument("--fold", type=int, default=0, help="fold: its validation cases are the test set (default 0)")
    data.add_argument("--labelled", type=int, help="fine-tune on the fold's first N training cases (default: all)")
    data.add_argument("--pretrain-datalist", type=Path, help="MAE datalist (default: every study of the fold)")
    budget = parser.add_argument_group(f"budget, the same for every arm ({CONFIG_DEFAULT})")
    budget.add_argument(
        "--overlay",
        dest="overlays",
        nargs="+",
        default=[],
        metavar="CONFIG",
        help="configs/ overlays for fine-tuning and evaluation, in order (e.g. adamw.json demo.json: the small-CPU "
        "recipe); their values become the defaults below",
    )
    budget.add_argument("--epochs", type=int, help="fine-tuning epochs (train.json max_epochs)")
    budget.add_argument("--iterations-per-epoch", type=int, help="fine-tuning iterations per epoch")
    budget.add_argument("--batch-size", type=int, help="batch size of fine-tuning and pretraining")
    budget.add_argument("--learning-rate", type=float, help="fine-tuning learning rate")
    budget.add_argument("--pretrain-epochs", type=int, help="MAE pretraining epochs (pretrain.json max_epochs)")
    budget.add_argument("--pretrain-iterations-per-epoch", type=int, help="MAE pretraining iterations per epoch")
    budget.add_argument(
        "--pretrain-warmup-epochs", type=int, help="MAE warm-up epochs (default: pretrain.json's share of the epochs)"
    )
    model = parser.add_argument_group(f"model and sampling; leave them on a GPU ({CONFIG_DEFAULT})")
    model.add_argument("--roi-size", type=int, nargs=3, help="patch size in voxels")
    model.add_argument("--pixdim", type=float, nargs=3, help="voxel size in mm after resampling")
    model.add_argument("--features", type=int, nargs="+", help="channels per encoder stage")
    model.add_argument("--strides", type=int, nargs="+", help="stride per encoder stage")
    model.add_argument("--tta-axes", type=int, nargs="*", help="flip TTA axes at evaluation (none: no TTA)")
    model.add_argument("--sw-overlap", type=float, help="sliding-window overlap at evaluation")
    runtime = parser.add_argument_group("speed settings (not part of the recorded protocol)")
    runtime.add_argument("--num-workers", type=int, help="data-loading processes per workflow")
    runtime.add_argument("--cache-dir", type=Path, help="where the preprocessed studies go (default: OUT/preprocessed)")
    runtime.add_argument("--sw-batch-size", type=int, help="sliding-window patches per forward pass at evaluation")
    runtime.add_argument("--figures", action="store_true", help="also write the per-study figures and lesion tables")
    return parser


def _arms(parser: argparse.ArgumentParser, names: Sequence[str]) -> list[Arm]:
    try:
        arms = [Arm.parse(name) for name in names]
    except ValueError as error:
        parser.error(str(error))
    if len({arm.name for arm in arms}) != len(arms):
        parser.error(f"--arms lists an arm twice: {' '.join(names)}")
    return arms


def make_protocol(args: argparse.Namespace, arms: list[Arm], command: str) -> Protocol:
    """The protocol of a parsed command line (reads the dataset's fold and the configs' defaults)."""
    data = load_fold(args.data.resolve(), args.fold)
    pretrain_datalist = check_pretrain_datalist(args.pretrain_datalist.resolve()) if args.pretrain_datalist else None
    return Protocol(
        data=data,
        labelled=labelled_subset(data, args.labelled),
        budget=resolve_budget({field.name: getattr(args, field.name, None) for field in fields(Budget)}),
        arms=arms,
        seeds=list(dict.fromkeys(args.seeds)),
        out=args.out.resolve(),
        pretrain_datalist=pretrain_datalist,
        runtime=Runtime(num_workers=args.num_workers, cache_dir=args.cache_dir, sw_batch_size=args.sw_batch_size),
        figures=args.figures,
        command=command,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ablation; returns the exit status (1 for bad input, with the problem on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    arms = _arms(parser, args.arms)
    try:
        protocol = make_protocol(args, arms, "python -m scripts.ablation " + shlex.join(argv))
    except ValueError as error:  # InputDataError included: a bad dataset, datalist or budget
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        run_ablation(protocol)
    except InputDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n" + (protocol.out / SUMMARY_MD).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
