# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Run the ablation: MAE pretraining, fine-tuning and evaluation of every arm and seed, through the bundle configs.

Each stage is a ``monai.bundle.ConfigWorkflow`` built in this process with overrides, exactly what
``python -m monai.bundle run`` would do. Finished stages are skipped on a rerun: a pretraining with its
``pretrain.json`` record, a fine-tuning with its checkpoint in ``run.json``, a run with its ``metrics.csv``.
An interrupted pretraining or fine-tuning resumes from its last checkpoint (the configs' own ``resume``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from monai.bundle import ConfigWorkflow
from scripts.ablation.bundle_configs import CONFIG_DIR, PRETRAIN_CONFIG, config_paths
from scripts.ablation.protocol import PROTOCOL_FILE, Arm, Protocol
from scripts.ablation.report import run_row, write_reports
from scripts.atomic_io import write_json
from scripts.errors import InputDataError
from scripts.mae import load_pretrained_encoder, pretraining_datalist
from scripts.mae.pretraining_datalist import relative_datalist

RUN_RECORD = "run.json"  # per fine-tuning run: seed, encoder, checkpoint, stage times
PRETRAIN_RECORD = "pretrain.json"  # per pretraining: encoder path and time
# The name the configs' ``last_checkpoint`` saver gives the final epoch's checkpoint (the only one kept).
FINAL_CHECKPOINT = "last_checkpoint_epoch={epochs}.pt"
TRANSFER_LOGGER = load_pretrained_encoder.__module__


class _MessageRecorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def logged(log_file: Path) -> Iterator[None]:
    """Copy every log record to ``log_file`` while the body runs."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(log_file)
    to_file.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    logging.getLogger().addHandler(to_file)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(to_file)
        to_file.close()


def run_workflow(
    configs: str | tuple[str, ...], workflow_type: str, overrides: Mapping[str, Any], log_file: Path
) -> ConfigWorkflow:
    """Build, initialise, run and finalise one bundle workflow; its log goes to ``log_file`` too."""
    files = config_paths(configs)
    shown = " ".join(f"--{key} '{json.dumps(value)}'" for key, value in overrides.items())
    print(f"python -m monai.bundle run --config_file '{json.dumps(files) if len(files) > 1 else files[0]}' {shown}")
    workflow = ConfigWorkflow(
        config_file=files,
        meta_file=str(CONFIG_DIR / "metadata.json"),
        logging_file=str(CONFIG_DIR / "logging.conf"),
        workflow_type=workflow_type,
        **overrides,
    )
    with logged(log_file):
        workflow.initialize()
        workflow.run()
        workflow.finalize()
    return workflow


def _read_record(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _update_record(path: Path, **values: Any) -> dict[str, Any]:
    record = {**_read_record(path), **values}
    write_json(record, path)
    return record


def pretraining_datalist_path(protocol: Protocol) -> Path:
    """``--pretrain-datalist``, or a datalist of every study of the fold (training and test images, no labels)."""
    if protocol.pretrain_datalist is not None:
        return protocol.pretrain_datalist
    path = protocol.out / "datalists" / "pretrain.json"
    studies = [[protocol.data.folder / image for image in item["image"]] for item in protocol.data.training]
    studies += [[protocol.data.folder / image for image in item["image"]] for item in protocol.data.test]
    write_json(relative_datalist(pretraining_datalist(studies), path.parent), path)
    return path


def finetune_datalist_path(protocol: Protocol) -> Path:
    """The fine-tuning datalist: the labelled subset for training, the fold's test cases for validation."""
    path = protocol.out / "datalists" / f"finetune_fold{protocol.data.fold}.json"
    write_json({"training": protocol.labelled, "validation": protocol.data.test}, path)
    return path


def pretrain(protocol: Protocol, variant: str, seed: int, datalist: Path) -> Path:
    """MAE-pretrain the encoder of ``variant`` with ``seed`` (once; reused by every fine-tuning); its path."""
    root = protocol.pretrain_dir(variant, seed)
    record = _read_record(root / PRETRAIN_RECORD)
    if record.get("encoder") and Path(record["encoder"]).is_file():
        print(f"--- pretraining {variant} seed {seed}: done, encoder {record['encoder']}", flush=True)
        return Path(record["encoder"])
    print(f"\n=== MAE pretraining: {variant}, seed {seed} ===", flush=True)
    budget = protocol.budget
    overrides = {
        **budget.model_overrides(variant),
        "bundle_root": str(root),
        "datalist": str(datalist),
        "max_epochs": budget.pretrain_epochs,
        "iterations_per_epoch": budget.pretrain_iterations_per_epoch,
        "warmup_epochs": budget.pretrain_warmup_epochs,
        "batch_size": budget.batch_size,
        "resume": True,
        "seed": seed,
        "cache_dir": str(protocol.cache_dir("pretrain")),
        **protocol.runtime.training_overrides(),
    }
    started = time.perf_counter()
    workflow = run_workflow(PRETRAIN_CONFIG, "train", overrides, root / "pretrain.log")
    encoder = Path(workflow.parser.get_parsed_content("encoder_path"))
    if not encoder.is_file():
        raise RuntimeError(f"pretraining finished but wrote no encoder at {encoder}")
    seconds = time.perf_counter() - started
    _update_record(root / PRETRAIN_RECORD, variant=variant, seed=seed, encoder=str(encoder), seconds=seconds)
    return encoder


def finetune(protocol: Protocol, arm: Arm, seed: int, datalist: Path, encoder: Path | None) -> Path:
    """Fine-tune ``arm`` with ``seed`` through train.json (from ``encoder`` if given); its final checkpoint.

    No validation runs during training (``val_interval`` beyond the last epoch): the fold's validation cases are
    the test set, so no checkpoint is picked on them; the final epoch's checkpoint is evaluated.
    """
    root = protocol.run_dir(arm, seed)
    record = _read_record(root / RUN_RECORD)
    if record.get("checkpoint") and Path(record["checkpoint"]).is_file():
        return Path(record["checkpoint"])
    print(f"\n=== fine-tuning: {arm.name}, seed {seed} ===", flush=True)
    budget = protocol.budget
    overrides = {
        **budget.model_overrides(arm.variant),
        "bundle_root": str(root),
        "dataset_dir": str(protocol.data.folder),
        "datalist": str(datalist),
        "fold": protocol.data.fold,
        "max_epochs": budget.epochs,
        "iterations_per_epoch": budget.iterations_per_epoch,
        "batch_size": budget.batch_size,
        "learning_rate": budget.learning_rate,
        "val_interval": budget.epochs + 1,
        "cache_dir": str(protocol.cache_dir("train")),
        "pretrained_encoder": str(encoder) if encoder else "",
        "resume": True,
        "seed": seed,
        **protocol.runtime.training_overrides(),
    }
    recorder = _MessageRecorder()
    logging.getLogger(TRANSFER_LOGGER).addHandler(recorder)
    started = time.perf_counter()
    try:
        workflow = run_workflow(budget.training_configs(), "train", overrides, root / "train.log")
    finally:
        logging.getLogger(TRANSFER_LOGGER).removeHandler(recorder)
    checkpoint = Path(workflow.parser.get_parsed_content("ckpt_dir")) / FINAL_CHECKPOINT.format(epochs=budget.epochs)
    if not checkpoint.is_file():
        raise RuntimeError(f"fine-tuning finished but its final checkpoint {checkpoint} is missing")
    transfer = [message for message in recorder.messages if "encoder tensors" in message]
    if encoder and not transfer:
        raise RuntimeError(f"{arm.name} seed {seed}: the pretrained encoder {encoder} was not loaded (see train.log)")
    _update_record(
        root / RUN_RECORD,
        arm=arm.name,
        seed=seed,
        encoder=str(encoder) if encoder else None,
        encoder_transfer=transfer[0] if transfer else None,
        checkpoint=str(checkpoint),
        train_seconds=time.perf_counter() - started,
    )
    return checkpoint


def metrics_path(protocol: Protocol, arm: Arm, seed: int) -> Path:
    """The per-case metrics of a run; its presence marks the run finished."""
    return protocol.run_dir(arm, seed) / "eval" / "metrics.csv"


def evaluate(protocol: Protocol, arm: Arm, seed: int, checkpoint: Path) -> Path:
    """Segment the fold's test cases with ``checkpoint`` and score them (inference.json + evaluate.json)."""
    root = protocol.run_dir(arm, seed)
    metrics_csv = metrics_path(protocol, arm, seed)
    print(f"\n=== evaluation: {arm.name}, seed {seed} ===", flush=True)
    overrides = {
        **protocol.budget.model_overrides(arm.variant),
        "bundle_root": str(root),
        "dataset_dir": str(protocol.data.folder),
        "fold": protocol.data.fold,
        "input_path": str(protocol.data.datalist),
        "datalist_key": "validation",
        "output_dir": str(metrics_csv.parent),
        "metrics_csv": str(metrics_csv),
        "checkpoints": [str(checkpoint)],
        "tta_axes": protocol.budget.tta_axes,
        "save_figures": protocol.figures,
        "save_quantification": protocol.figures,
        "sw_overlap": protocol.budget.sw_overlap,
        **protocol.runtime.evaluation_overrides(),
    }
    started = time.perf_counter()
    run_workflow(protocol.budget.evaluation_configs(), "eval", overrides, root / "eval.log")
    _update_record(root / RUN_RECORD, eval_seconds=time.perf_counter() - started)
    return metrics_csv


def _differences(found: Any, wanted: Any, where: str = "") -> list[str]:
    if isinstance(found, dict) and isinstance(wanted, dict):
        keys = sorted(found.keys() | wanted.keys())
        return [d for key in keys for d in _differences(found.get(key), wanted.get(key), f"{where}{key}.")]
    return [] if found == wanted else [f"{where.rstrip('.')} {json.dumps(found)} -> {json.dumps(wanted)}"]


def check_same_protocol(protocol: Protocol) -> None:
    """Record the protocol in ``--out``, or fail if the runs already there were made under another one."""
    path = protocol.out / PROTOCOL_FILE
    wanted = json.loads(json.dumps(protocol.record()))
    if path.is_file():
        differing = _differences(json.loads(path.read_text()), wanted)
        if differing:
            raise InputDataError(
                path, f"holds runs made with other settings ({'; '.join(differing)}); use another --out"
            )
    write_json(wanted, path)


def run_ablation(protocol: Protocol) -> list[dict[str, Any]]:
    """Run (or resume) every arm and seed, rewriting the reports after each run; returns the per-run rows."""
    check_same_protocol(protocol)
    finetune_list = finetune_datalist_path(protocol)
    pretrain_list = pretraining_datalist_path(protocol) if any(arm.ssl for arm in protocol.arms) else None
    rows = []
    for seed in protocol.seeds:
        for arm in protocol.arms:
            metrics_csv = metrics_path(protocol, arm, seed)
            if metrics_csv.is_file():
                print(f"--- {arm.name} seed {seed}: finished, {metrics_csv}", flush=True)
            else:
                encoder = pretrain(protocol, arm.variant, seed, pretrain_list) if arm.ssl else None
                checkpoint = finetune(protocol, arm, seed, finetune_list, encoder)
                evaluate(protocol, arm, seed, checkpoint)
            rows.append(run_row(arm, seed, metrics_csv))
            write_reports(protocol, rows, _compute_seconds(protocol))
    return rows


def _compute_seconds(protocol: Protocol) -> dict[str, float]:
    """Seconds spent per stage, summed over the records of every run in ``--out``."""
    totals = {"pretraining": 0.0, "fine-tuning": 0.0, "evaluation": 0.0}
    for record_file in protocol.out.glob(f"pretrain/*/*/{PRETRAIN_RECORD}"):
        totals["pretraining"] += _read_record(record_file).get("seconds", 0.0)
    for record_file in protocol.out.glob(f"runs/*/*/{RUN_RECORD}"):
        record = _read_record(record_file)
        totals["fine-tuning"] += record.get("train_seconds", 0.0)
        totals["evaluation"] += record.get("eval_seconds", 0.0)
    return totals
