# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The end-to-end demo on synthetic PET/CT, small enough for a 2-core CPU in about 10 minutes.

synthetic cohort (autoPET layout) -> nnU-Net layout with patient-grouped folds -> train a small BiXLSTM-ResNet
UNet on fold 0 -> infer held-out synthetic studies with flip TTA -> autoPET metrics, beside a fixed
SUV-threshold baseline. Every stage is the real workflow (the bundle configs through ``monai.bundle``) at
small sizes; the equivalent shell commands are printed as it goes.

    cd bundle && python -m scripts.demo --work ../demo_work [--train-minutes 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from monai.bundle import run as run_bundle
from scripts.atomic_io import write_json
from scripts.data.inference_inputs import find_inference_items
from scripts.data.prepare import prepare_dataset
from scripts.evaluation.baseline import segment_folder
from scripts.evaluation.metrics import format_table
from scripts.evaluation.prediction_scoring import score_predictions
from scripts.synthetic import generate_cohort

BUNDLE_ROOT = Path(__file__).resolve().parents[1]

# Small-CPU settings, passed to the bundle configs as overrides (the paper's are the configs' defaults).
SHAPE = (100, 100, 128)
SPACING = (5.0, 5.0, 7.5)
SMALL_MODEL = {
    "pixdim": list(SPACING),
    "roi_size": [32, 32, 32],
    "features": [16, 32, 64, 128],
    "strides": [1, 2, 2, 2],
    "xlstm": "bot",
    "sw_overlap": 0.25,
}


def overrides_text(overrides: dict[str, Any]) -> str:
    """The overrides as ``monai.bundle run`` command-line flags."""
    return " ".join(f"--{key} '{json.dumps(value)}'" for key, value in overrides.items())


def stage(title: str) -> float:
    """Print a stage banner; return the start time."""
    print(f"\n=== {title} ===", flush=True)
    return time.perf_counter()


def run_workflow(config_files: list[str], overrides: dict[str, Any]) -> None:
    """Run a bundle workflow in this process, exactly as ``python -m monai.bundle run`` does."""
    files = [str(BUNDLE_ROOT / "configs" / name) for name in config_files]
    shown = files[0] if len(files) == 1 else json.dumps(files)
    print(f"python -m monai.bundle run --config_file {shown} {overrides_text(overrides)}", flush=True)
    run_bundle(config_file=files, **overrides)


def main(argv: list[str] | None = None) -> None:
    """Run the whole demo."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("demo_work"), help="working folder (recreated)")
    parser.add_argument("--train-studies", type=int, default=24)
    parser.add_argument("--test-studies", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--iterations", type=int, default=40, help="iterations per epoch")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--tta-axes", type=int, nargs="*", default=[0], help="flip TTA axes (the bundle default is 0 1 2: 8 passes)"
    )
    args = parser.parse_args(argv)

    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    started = time.perf_counter()

    t = stage(f"1. synthetic whole-body FDG PET/CT: {args.train_studies} training + {args.test_studies} test studies")
    common = {"tracer": "fdg", "shape": SHAPE, "spacing": SPACING}
    generate_cohort(work / "raw_train", args.train_studies, seed=args.seed, **common)
    generate_cohort(work / "raw_test", args.test_studies, seed=args.seed + 1000, **common)
    print(f"python -m scripts.synthetic --out {work / 'raw_train'} --n {args.train_studies} --seed {args.seed}")
    print(f"({time.perf_counter() - t:.0f} s)")

    t = stage("2. nnU-Net layout, patient-grouped 5-fold split, datalists")
    train_set = prepare_dataset(work / "raw_train", work / "dataset_train", n_folds=5, seed=0).folder
    test_set = prepare_dataset(work / "raw_test", work / "dataset_test", n_folds=2, seed=0).folder
    print(f"python -m scripts.data.prepare --src {work / 'raw_train'} --dst {train_set}")
    print(f"({time.perf_counter() - t:.0f} s)")

    t = stage("3. train fold 0 (small configuration)")
    model_root = work / "bundle_run"
    train_overrides = {
        **SMALL_MODEL,
        "bundle_root": str(model_root),
        "dataset_dir": str(train_set),
        "fold": 0,
        "max_epochs": args.epochs,
        "iterations_per_epoch": args.iterations,
        "val_interval": args.epochs,
        "pos_neg_ratio": [2, 1],
        "learning_rate": 0.003,
        "warmup_epochs": 1,
        "num_workers": 2,
    }
    run_workflow(["train.json", "adamw.json"], train_overrides)
    print(f"({time.perf_counter() - t:.0f} s)")

    passes = 2 ** len(args.tta_axes)
    t = stage(
        f"4. evaluate on the held-out test studies: sliding window + flip TTA ({passes} passes), masks on CT grid"
    )
    eval_dir = work / "eval_model"
    eval_overrides = {
        **SMALL_MODEL,
        "bundle_root": str(model_root),
        "input_path": str(test_set / "datalist_all.json"),
        "datalist_key": "training",
        "output_dir": str(eval_dir),
        "tta_axes": list(args.tta_axes),
    }
    run_workflow(["inference.json", "evaluate.json"], eval_overrides)
    print(f"({time.perf_counter() - t:.0f} s)")

    t = stage("5. the SUV >= 4 threshold baseline on the same studies")
    baseline_dir = work / "eval_baseline"
    segment_folder(test_set / "imagesTr", baseline_dir)
    items = find_inference_items(test_set / "datalist_all.json", datalist_key="training")
    baseline = score_predictions(items, baseline_dir, baseline_dir / "metrics.csv", verbose=False)
    model = json.loads((eval_dir / "metrics_summary.json").read_text())
    print(f"({time.perf_counter() - t:.0f} s)")

    stage("autoPET metrics on the held-out synthetic studies (Dice/FNV over positive studies, FPV over all)")
    rows = []
    for name, summary in (("BiXLSTM-ResNet UNet (bot), demo training", model), ("SUV >= 4 threshold", baseline)):
        metrics = summary["metrics"]
        dice, fpv, fnv = (metrics[c]["mean"] for c in ("dice", "fpv_ml", "fnv_ml"))
        rows.append([name, summary["cases"], *(float("nan") if v is None else v for v in (dice, fpv, fnv))])
    print(format_table(["method", "studies", "dice", "fpv_ml", "fnv_ml"], rows))
    write_json({"model": model, "baseline": baseline}, work / "demo_summary.json")
    print(f"\ntotal {time.perf_counter() - started:.0f} s; outputs in {work}")


if __name__ == "__main__":
    main()
