# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The end-to-end demo on synthetic PET/CT, for a 2-core CPU in under 15 minutes.

synthetic FDG cohorts on the demo grid -> nnU-Net layout with patient-grouped folds -> the shipped synthetic-trained
model (``models/demo_synthetic.pt``) on held-out test studies -> a model trained here from scratch for a few minutes
with the same recipe -> both scored with the autoPET metrics and lesion-wise detection, beside a fixed SUV >= 4
threshold. Every model stage is the real workflow: ``monai.bundle run`` with ``train.json`` + ``adamw.json`` +
``demo.json`` (training) and ``inference.json`` + ``evaluate.json`` + ``demo.json`` (inference); the commands are
printed as they run and, with every printed number, written to ``<work>/demo_summary.json``.

    cd bundle && python -m scripts.demo --work ../demo_work
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scripts.atomic_io import write_json
from scripts.data.prepare import prepare_dataset
from scripts.demo_weights import SHIPPED_MODEL, TRAIN_CONFIGS, demo_shape, demo_spacing, evaluate_checkpoint
from scripts.evaluation.model_comparison import BASELINE, baseline_result, mean_of, print_comparison, test_items
from scripts.synthetic import generate_cohort
from scripts.training.curves import CURVES_JSON
from scripts.workflow_runs import CONFIGS, run_workflow

# What a working detector must reach on the positive test studies, and its false-positive volume at most.
TARGET_DICE = 0.5
TARGET_FPV_SHARE = 0.10


class Demo:
    """Runs the stages, prints as it goes and records every command and number for ``demo_summary.json``."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.started = time.perf_counter()
        self.summary: dict[str, Any] = {"commands": [], "stages": [], "results": {}}

    def stage(self, title: str) -> float:
        """Print a stage banner; return its start time."""
        print(f"\n=== {title} ===", flush=True)
        return time.perf_counter()

    def done(self, title: str, start: float) -> None:
        """Print and record a stage's wall time."""
        seconds = time.perf_counter() - start
        self.summary["stages"].append({"stage": title, "seconds": round(seconds, 1)})
        print(f"({seconds:.0f} s)", flush=True)

    def command(self, text: str) -> None:
        """Print and record an equivalent shell command."""
        print(text, flush=True)
        self.summary["commands"].append(text)

    def workflow(self, config_names: Sequence[str], overrides: dict[str, Any]) -> None:
        """Run a bundle workflow (as ``python -m monai.bundle run`` does) and record its command."""
        self.summary["commands"].append(run_workflow(config_names, overrides))

    def evaluate(self, name: str, checkpoint: Path, test_set: Path, output_dir: Path) -> dict[str, Any]:
        """Infer and score the test studies with one checkpoint; returns metrics and detection."""
        command, result = evaluate_checkpoint(name, checkpoint, test_set, output_dir, self.work / "inference")
        self.summary["commands"].append(command)
        return result


def print_curves(name: str, curves: dict[str, list], lines: int = 12) -> None:
    """The mean training loss of about ``lines`` evenly spaced epochs and of every validated one, with its Dice."""
    validation = {int(e): v for e, v in curves.get("validation", [])}
    losses = {int(epoch): loss for epoch, loss in curves.get("loss", [])}
    step = max(1, math.ceil(len(losses) / lines))
    shown = sorted({e for e in losses if e == 1 or e % step == 0} | set(validation) & set(losses))
    print(f"\n{name}: epoch, mean training loss, validation Dice ({len(losses)} epochs; full curves in the summary)")
    for epoch in shown:
        val = validation.get(epoch)
        print(f"  {epoch:4d}  {losses[epoch]:.4f}" + ("" if val is None else f"  {val:.4f}"))


def main(argv: list[str] | None = None) -> None:
    """Run the whole demo."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("demo_work"), help="working folder (recreated)")
    parser.add_argument("--train-studies", type=int, default=24)
    parser.add_argument("--test-studies", type=int, default=12)
    parser.add_argument("--test-negative-share", type=float, default=1 / 3)
    parser.add_argument("--train-epochs", type=int, default=24, help="epochs of the from-scratch training")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL, help="the shipped synthetic-trained weights")
    args = parser.parse_args(argv)

    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    demo = Demo(work)
    spacing = demo_spacing()
    shape = demo_shape(spacing)

    title = f"1. synthetic whole-body FDG PET/CT: {args.train_studies} training + {args.test_studies} test studies"
    t = demo.stage(title)
    for folder, n, seed, negatives in (
        ("raw_train", args.train_studies, args.seed, 0.25),
        ("raw_test", args.test_studies, args.seed + 1000, args.test_negative_share),
    ):
        generate_cohort(work / folder, n, seed, "fdg", shape, spacing, negative_share=negatives)
        grid = f"--shape {' '.join(map(str, shape))} --spacing {' '.join(map(str, spacing))}"
        demo.command(
            f"python -m scripts.synthetic --out {work / folder} --n {n} --seed {seed} {grid} "
            f"--negative-share {negatives:.4g}"
        )
    demo.done(title, t)

    t = demo.stage("2. nnU-Net layout, patient-grouped folds, datalists")
    train_set = prepare_dataset(work / "raw_train", work / "dataset_train", n_folds=5, seed=0).folder
    test_set = prepare_dataset(work / "raw_test", work / "dataset_test", n_folds=2, seed=0).folder
    for src, dst, folds in (("raw_train", train_set, 5), ("raw_test", test_set, 2)):
        demo.command(f"python -m scripts.data.prepare --src {work / src} --dst {dst} --folds {folds}")
    demo.done("prepare", t)

    t = demo.stage(f"3. the {BASELINE} baseline on the test studies")
    baseline_dir = work / "eval_baseline"
    baseline = baseline_result(test_set, baseline_dir)
    demo.command(f"python -m scripts.evaluation.baseline --images {test_set / 'imagesTr'} --out {baseline_dir}")
    demo.done("baseline", t)

    results = []
    if args.model.is_file():
        t = demo.stage(f"4. the shipped synthetic-trained model {args.model.name} on the test studies")
        results.append(demo.evaluate("shipped model (synthetic-trained)", args.model, test_set, work / "eval_shipped"))
        demo.done("shipped model", t)
    else:
        print(f"\n(no shipped model at {args.model}: skipping its evaluation)")

    t = demo.stage(f"5. train a model from scratch here ({args.train_epochs} epochs, same recipe)")
    run_root = work / "bundle_run"
    recipe = json.loads((CONFIGS / "demo.json").read_text())
    overrides = {
        "bundle_root": str(run_root),
        "dataset_dir": str(train_set),
        "fold": 0,
        "max_epochs": args.train_epochs,
        "val_interval": args.train_epochs,
    }
    demo.workflow(TRAIN_CONFIGS, overrides)
    demo.done("training", t)
    scratch_curves = json.loads((run_root / "runs" / "fold0" / CURVES_JSON).read_text())

    t = demo.stage("6. the model trained here on the test studies")
    scratch_model = run_root / "models" / "fold0" / "model.pt"
    scratch_name = f"trained here ({args.train_epochs * recipe['iterations_per_epoch']} iterations)"
    results.append(demo.evaluate(scratch_name, scratch_model, test_set, work / "eval_scratch"))
    demo.done("scratch model", t)

    manifest = json.loads((work / "raw_test" / "synthetic_cohort.json").read_text())
    positives = sum(not study["negative"] for study in manifest["studies"])
    studies = len(test_items(test_set))
    demo.stage(
        f"autoPET metrics on {studies} held-out synthetic FDG studies ({positives} positive): "
        "Dice and FNV over the positive studies, FPV over all"
    )
    baseline_fpv = mean_of(baseline, "fpv_ml")
    printed = print_comparison([*results, baseline], baseline_fpv)
    for result in results:
        numbers = printed[result["name"]]
        met = numbers["dice"] >= TARGET_DICE and numbers["fpv_share_of_baseline"] <= TARGET_FPV_SHARE
        numbers["meets_target"] = bool(met)
        print(
            f"{result['name']}: Dice {numbers['dice']:.3f} (target >= {TARGET_DICE}), FPV "
            f"{numbers['fpv_share_of_baseline']:.1%} of the baseline's (target <= {TARGET_FPV_SHARE:.0%}): "
            + ("target met" if met else "target not met")
        )
    card_path = args.model.with_suffix(".json")
    shipped_curves = json.loads(card_path.read_text()).get("curves", {}) if card_path.is_file() else {}
    if shipped_curves:
        print_curves("shipped model training", shipped_curves)
    print_curves("training here", scratch_curves)
    demo.summary["results"] = printed
    demo.summary["test_studies"] = {"studies": studies, "positive": positives}
    demo.summary["checkpoints"] = {r["name"]: r["checkpoint"] for r in results}
    demo.summary["curves"] = {"shipped": shipped_curves, "trained_here": scratch_curves}
    demo.summary["total_seconds"] = round(time.perf_counter() - demo.started, 1)
    write_json(demo.summary, work / "demo_summary.json")
    print(f"\ntotal {demo.summary['total_seconds']:.0f} s; summary in {work / 'demo_summary.json'}")


if __name__ == "__main__":
    main()
