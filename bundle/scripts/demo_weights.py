# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
r"""The synthetic-trained small model shipped as ``bundle/models/demo_synthetic.pt``, trained by one command.

    cd bundle && python -m scripts.demo_weights --work ../demo_weights_work \\
        --organs ../../shared/data/autopet_organ_labels

1. a synthetic cohort on the demo grid (``configs/demo.json`` ``pixdim``): procedural FDG and PSMA bodies, and
   bodies built on real organ-label maps (``--organs``; each map resampled to the grid first). The maps of
   :data:`HELD_OUT_MAPS` are never used, so the model can be checked on anatomy it has not seen;
2. the nnU-Net layout with patient-grouped folds, and fold 0 trained through ``monai.bundle`` with
   ``train.json`` + ``adamw.json`` + ``demo.json`` (the demo's own recipe);
3. the best-validation checkpoint exported as float16 weights to ``--out`` with a JSON card beside it: the
   command, the wall time, the cohort and the training curves.

Synthetic data only: the weights are for trying the package, not for patients or real studies.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from nibabel.processing import resample_from_to
from scripts.atomic_io import atomic_path, save_nifti, write_json
from scripts.data.prepare import prepare_dataset
from scripts.evaluation.metrics import sibling
from scripts.evaluation.model_comparison import baseline_result, masks_result, mean_of, print_comparison
from scripts.inference.checkpoints import read_state_dict
from scripts.synthetic import generate_cohort
from scripts.synthetic.cohort import MANIFEST_FILE
from scripts.training.curves import CURVES_JSON
from scripts.workflow_runs import BUNDLE_ROOT, CONFIGS, run_workflow

DEMO_CONFIG = CONFIGS / "demo.json"
SHIPPED_MODEL = BUNDLE_ROOT / "models" / "demo_synthetic.pt"
TRAIN_CONFIGS = ("train.json", "adamw.json", "demo.json")
EVALUATE_CONFIGS = ("inference.json", "evaluate.json", "demo.json")
FIELD_OF_VIEW_MM = (520.0, 520.0, 1000.0)
# Organ maps kept out of training (a third of each tracer's maps in ../shared/data/autopet_organ_labels).
HELD_OUT_MAPS = tuple(f"fdg_{i:03d}.nii.gz" for i in range(16, 24)) + tuple(
    f"psma_{i:03d}.nii.gz" for i in range(32, 36)
)
# (tracer, procedural studies, organ-map studies, negative share) of the training cohort.
COHORT = (("fdg", 40, 24, 0.25), ("psma", 24, 12, 0.1))


def demo_spacing() -> tuple[float, float, float]:
    """The model grid of ``configs/demo.json`` (mm)."""
    return tuple(float(s) for s in json.loads(DEMO_CONFIG.read_text())["pixdim"])  # type: ignore[return-value]


def demo_shape(spacing: Sequence[float]) -> tuple[int, int, int]:
    """Procedural grid covering :data:`FIELD_OF_VIEW_MM` at ``spacing``."""
    return tuple(int(round(f / s)) for f, s in zip(FIELD_OF_VIEW_MM, spacing, strict=True))  # type: ignore[return-value]


def resample_organ_maps(maps: Sequence[Path], spacing: Sequence[float], out_dir: Path) -> list[Path]:
    """Each organ map resampled (nearest neighbour, same extent and axes) to ``spacing``; returns the new files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in maps:
        image = nib.load(str(path))
        zooms = np.asarray(image.header.get_zooms()[:3], dtype=np.float64)
        shape = np.maximum(np.round(np.asarray(image.shape[:3]) * zooms / np.asarray(spacing)), 2).astype(int)
        affine = image.affine.copy()
        affine[:3, :3] = image.affine[:3, :3] * (np.asarray(image.shape[:3]) / shape)[None, :]
        # Keep the outer corner of the first voxel where it was.
        corner = image.affine[:3, :3] @ np.full(3, -0.5) + image.affine[:3, 3]
        affine[:3, 3] = corner - affine[:3, :3] @ np.full(3, -0.5)
        target = nib.Nifti1Image(np.zeros(tuple(shape), dtype=np.uint8), affine)
        resampled = resample_from_to(image, target, order=0)
        written.append(save_nifti(np.asarray(resampled.dataobj), affine, out_dir / path.name, dtype=np.uint8))
    return written


def training_maps(organs: Path | None) -> list[Path]:
    """Organ maps allowed for training: every map in ``organs`` except :data:`HELD_OUT_MAPS`."""
    if organs is None:
        return []
    maps = sorted(p for p in organs.iterdir() if p.name.endswith((".nii.gz", ".nii")))
    return [p for p in maps if p.name not in HELD_OUT_MAPS]


def build_cohort(
    raw: Path, organs: Path | None, seed: int, scale: float = 1.0, cohort: Sequence[tuple] = COHORT
) -> list[dict]:
    """Write a training cohort (``cohort``: rows as in :data:`COHORT`) into ``raw``; returns what was generated."""
    spacing = demo_spacing()
    maps = resample_organ_maps(training_maps(organs), spacing, raw.parent / "organ_maps") if organs else []
    described = []
    for index, (tracer, procedural, mapped, negative_share) in enumerate(cohort):
        n = max(1, round(procedural * scale))
        generate_cohort(raw, n, seed + 10 * index, tracer, demo_shape(spacing), spacing, negative_share=negative_share)
        described.append({"tracer": tracer, "bodies": "procedural", "studies": n, "negative_share": negative_share})
        if maps and mapped:
            n = max(1, round(mapped * scale))
            generate_cohort(raw, n, seed + 10 * index + 5, tracer, organ_maps=maps, negative_share=negative_share)
            described.append({"tracer": tracer, "bodies": "organ maps", "studies": n, "maps": [m.name for m in maps]})
    return described


def export_weights(checkpoint: Path, out: Path) -> int:
    """Write the network weights of a training checkpoint as float16 to ``out``; returns the file size in bytes."""
    stored = read_state_dict(checkpoint)
    state = {key: value.half() if value.is_floating_point() else value for key, value in stored.items()}
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    return out.stat().st_size


def evaluate_checkpoint(
    name: str, checkpoint: Path, test_set: Path, output_dir: Path, bundle_root: Path
) -> tuple[str, dict[str, Any]]:
    """Infer and score ``test_set`` with one checkpoint (``EVALUATE_CONFIGS``); returns the command and the result.

    The result holds the metrics the workflow itself wrote, and the lesion-wise detection.
    """
    overrides = {
        "bundle_root": str(bundle_root),
        "input_path": str(test_set / "datalist_all.json"),
        "datalist_key": "training",
        "output_dir": str(output_dir),
        "checkpoints": [str(checkpoint)],
    }
    command = run_workflow(EVALUATE_CONFIGS, overrides)
    metrics = json.loads(sibling(output_dir / "metrics.csv", "summary", ".json").read_text())
    return command, masks_result(name, test_set, output_dir, checkpoint, metrics)


def portable(text: str, work: Path) -> str:
    """``text`` with this machine's bundle and work folders written as ``<bundle>`` and ``<work>`` (for the card)."""
    return text.replace(str(BUNDLE_ROOT), "<bundle>").replace(str(work), "<work>")


def check_on_held_out_maps(weights: Path, organs: Path, work: Path, seed: int, per_map: int = 1) -> dict[str, Any]:
    """Score ``weights`` beside the SUV threshold on studies built on the :data:`HELD_OUT_MAPS` at their own grids.

    The maps keep their native (CT-like, ~2 x 2 x 3 mm) grids: the inference chain resamples to the model grid and
    writes masks back on the study's grid, as it does for a real study. Returns the printed numbers.
    """
    raw, dataset = work / "held_out_raw", work / "held_out_dataset"
    shutil.rmtree(raw, ignore_errors=True)
    for index, tracer in enumerate(("fdg", "psma")):
        maps = [organs / name for name in HELD_OUT_MAPS if name.startswith(tracer)]
        generate_cohort(raw, per_map * len(maps), seed + index, tracer, organ_maps=maps, negative_share=0.25)
    studies = json.loads((raw / MANIFEST_FILE).read_text())["studies"]
    test_set = prepare_dataset(raw, dataset, n_folds=2, seed=0, overwrite=True).folder
    baseline = baseline_result(test_set, work / "held_out_baseline")
    name = f"{weights.name} (unseen organ maps)"
    command, model = evaluate_checkpoint(name, weights, test_set, work / "held_out_model", work / "held_out_inference")
    positive = sum(not study["negative"] for study in studies)
    print(f"\nunseen organ maps, native grids: {len(studies)} studies ({positive} positive)", flush=True)
    printed = print_comparison([model, baseline], mean_of(baseline, "fpv_ml"))
    return {
        "maps": list(HELD_OUT_MAPS),
        "studies": len(studies),
        "positive": positive,
        "command": portable(command, work),
        "results": printed,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Build the cohort, train fold 0 with the demo recipe, export the weights, check them, write their card."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="working folder (cohort, dataset, run)")
    parser.add_argument("--organs", type=Path, help="folder of organ-label maps (autoPET ids 0-10)")
    parser.add_argument("--out", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--epochs", type=int, help="max_epochs (default: demo.json's)")
    parser.add_argument("--scale", type=float, default=1.0, help="cohort size factor (1.0: the shipped cohort)")
    parser.add_argument(
        "--check-only", action="store_true", help="only score --out on the unseen organ maps and update its card"
    )
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    started = time.perf_counter()
    work = args.work.resolve()
    card_path = args.out.with_suffix(".json")
    if args.check_only:
        if args.organs is None:
            parser.error("--check-only needs --organs")
        card = json.loads(card_path.read_text())
        card["unseen_organ_maps"] = check_on_held_out_maps(args.out, args.organs, work, args.seed)
        write_json(card, card_path)
        return 0
    raw, dataset, run_root = work / "raw", work / "dataset", work / "run"
    if not (dataset / "datalist_fold0.json").is_file():
        shutil.rmtree(raw, ignore_errors=True)
        cohort = build_cohort(raw, args.organs, args.seed, args.scale)
        prepare_dataset(raw, dataset, n_folds=5, seed=0, overwrite=True)
        write_json(cohort, work / "cohort.json")
    cohort = json.loads((work / "cohort.json").read_text())
    recipe = json.loads(DEMO_CONFIG.read_text())
    overrides = {"bundle_root": str(run_root), "dataset_dir": str(dataset), "fold": 0, "seed": args.seed}
    if args.epochs:
        # Validate at least at the end: the exported checkpoint is the best validation's.
        overrides.update(max_epochs=args.epochs, val_interval=min(args.epochs, recipe["val_interval"]))
    command = run_workflow(TRAIN_CONFIGS, overrides)
    size = export_weights(run_root / "models" / "fold0" / "model.pt", args.out)
    card = {
        "weights": args.out.name,
        "trained_on": "synthetic PET/CT only (scripts.synthetic); for trying the package, not for patients",
        "command": portable(" ".join(["cd bundle && python -m scripts.demo_weights", *arguments]), work),
        "bundle_command": portable(command, work),
        "configs": list(TRAIN_CONFIGS),
        "held_out_organ_maps": list(HELD_OUT_MAPS),
        "cohort": cohort,
        "training_wall_time_s": round(time.perf_counter() - started),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.platform(),
        "bytes": size,
        "curves": json.loads((run_root / "runs" / "fold0" / CURVES_JSON).read_text()),
    }
    if args.organs is not None:
        card["unseen_organ_maps"] = check_on_held_out_maps(args.out, args.organs, work, args.seed)
    write_json(card, card_path)
    print(f"wrote {args.out} ({size / 1e6:.1f} MB) and {card_path.name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
