# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""What one ablation compares and on what: arms, the shared budget, the fold's data, the output layout.

Every arm sees the same data (the first ``labelled`` training cases of the fold for fine-tuning, the fold's
validation cases as the test set) and the same budget; only the xLSTM placement and the MAE pretraining differ.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scripts.ablation.bundle_configs import EVALUATE_CONFIGS, PRETRAIN_CONFIG, TRAIN_CONFIG, config_values
from scripts.data.datalists import fold_datalist_name
from scripts.data.splits import SPLITS_FILE
from scripts.errors import InputDataError

VARIANTS = ("none", "enc", "bot")  # xLSTM placement: none (plain residual UNet), encoder stages, bottleneck
SSL_SUFFIX = "+ssl"
DEFAULT_ARMS = ("none", "enc", "bot", "enc+ssl", "bot+ssl")  # the rows of the paper's Table 2, plus scratch runs
PROTOCOL_FILE = "protocol.json"


@dataclass(frozen=True)
class Arm:
    """One row of the table: an xLSTM variant trained from scratch or from its MAE-pretrained encoder."""

    variant: str
    ssl: bool

    @classmethod
    def parse(cls, text: str) -> Arm:
        """``"bot"`` (scratch) or ``"bot+ssl"`` (MAE pretraining, then fine-tuning); variants: none, enc, bot."""
        variant = text.removesuffix(SSL_SUFFIX)
        if variant not in VARIANTS:
            raise ValueError(f"unknown arm {text!r}: use one of {list(VARIANTS)}, each optionally with {SSL_SUFFIX!r}")
        return cls(variant=variant, ssl=text.endswith(SSL_SUFFIX))

    @property
    def name(self) -> str:
        """The CLI and CSV name, e.g. ``bot+ssl``."""
        return self.variant + (SSL_SUFFIX if self.ssl else "")

    @property
    def folder(self) -> str:
        """The run folder name, e.g. ``bot_ssl``."""
        return self.name.replace("+", "_")


@dataclass(frozen=True)
class Budget:
    """The settings every arm shares. ``resolve_budget`` fills what the command line leaves to the configs."""

    epochs: int
    iterations_per_epoch: int
    batch_size: int
    learning_rate: float
    pretrain_epochs: int
    pretrain_iterations_per_epoch: int
    pretrain_warmup_epochs: int
    roi_size: list[int]
    pixdim: list[float]
    features: list[int]
    strides: list[int]
    tta_axes: list[int]
    sw_overlap: float
    pos_neg_ratio: list[float]  # lesion : anywhere patch centres
    hot_patch_weight: float  # patches centred on hot background (hard negatives), same scale as pos_neg_ratio
    overlays: list[str] = field(default_factory=list)  # configs after train.json / evaluate.json, e.g. demo.json

    def training_configs(self) -> list[str]:
        """Fine-tuning: ``train.json`` then the overlays."""
        return [TRAIN_CONFIG, *self.overlays]

    def evaluation_configs(self) -> list[str]:
        """Evaluation: ``inference.json`` + ``evaluate.json`` then the overlays."""
        return [*EVALUATE_CONFIGS, *self.overlays]

    def model_overrides(self, variant: str) -> dict[str, Any]:
        """The network and sampling keys every workflow of ``variant`` gets."""
        return {
            "xlstm": variant,
            "features": self.features,
            "strides": self.strides,
            "roi_size": self.roi_size,
            "pixdim": self.pixdim,
        }


# Budget field -> key in the config that defines its default.
_TRAIN_DEFAULTS = {
    "epochs": "max_epochs",
    "iterations_per_epoch": "iterations_per_epoch",
    "batch_size": "batch_size",
    "learning_rate": "learning_rate",
    "roi_size": "roi_size",
    "pixdim": "pixdim",
    "features": "features",
    "strides": "strides",
    "pos_neg_ratio": "pos_neg_ratio",
    "hot_patch_weight": "hot_patch_weight",
}
_PRETRAIN_DEFAULTS = {
    "pretrain_epochs": "max_epochs",
    "pretrain_iterations_per_epoch": "iterations_per_epoch",
    "pretrain_warmup_epochs": "warmup_epochs",
}
_EVALUATE_DEFAULTS = {"tta_axes": "tta_axes", "sw_overlap": "sw_overlap"}


def _defaults(configs: str | Sequence[str], fields: Mapping[str, str], requested: Mapping[str, Any]) -> dict:
    missing = {name: key for name, key in fields.items() if requested.get(name) is None}
    values = config_values(configs, missing.values()) if missing else {}
    return {name: requested[name] if name not in missing else values[key] for name, key in fields.items()}


def resolve_budget(requested: Mapping[str, Any]) -> Budget:
    """The budget: the requested values, and the config defaults for those given as ``None``.

    ``overlays`` (config names) apply to fine-tuning and evaluation, and their values are the defaults there; MAE
    pretraining keeps ``pretrain.json``'s own optimiser and schedule and gets only the model keys.
    The pretraining warm-up, when not given, keeps ``pretrain.json``'s ratio of warm-up to total epochs (at least
    one epoch), so a shortened pretraining still leaves its warm-up.
    """
    overlays = list(requested.get("overlays") or [])
    values = _defaults([TRAIN_CONFIG, *overlays], _TRAIN_DEFAULTS, requested)
    values.update(_defaults([*EVALUATE_CONFIGS, *overlays], _EVALUATE_DEFAULTS, requested))
    pretrain = _defaults(PRETRAIN_CONFIG, _PRETRAIN_DEFAULTS, requested)
    if requested.get("pretrain_warmup_epochs") is None and requested.get("pretrain_epochs") is not None:
        default = config_values(PRETRAIN_CONFIG, ["max_epochs", "warmup_epochs"])
        ratio = default["warmup_epochs"] / default["max_epochs"]
        pretrain["pretrain_warmup_epochs"] = max(1, round(pretrain["pretrain_epochs"] * ratio))
    values.update(pretrain, overlays=overlays)
    budget = Budget(**{name: _json_ready(value) for name, value in values.items()})
    for name in ("epochs", "iterations_per_epoch", "batch_size", "pretrain_epochs", "pretrain_iterations_per_epoch"):
        if getattr(budget, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(budget, name)}")
    return budget


def _json_ready(value: Any) -> Any:
    return [_json_ready(v) for v in value] if isinstance(value, (list, tuple)) else value


@dataclass(frozen=True)
class FoldData:
    """One fold of a prepared dataset: its training items and its validation items (the ablation's test set)."""

    folder: Path
    fold: int
    training: list[dict[str, Any]]
    test: list[dict[str, Any]]

    @property
    def datalist(self) -> Path:
        """The fold's datalist file written by ``scripts.data.prepare``."""
        return self.folder / fold_datalist_name(self.fold)


PREPARE_HINT = "prepare the dataset with python -m scripts.data.prepare first"


def _read_json(path: Path, what: str, hint: str = PREPARE_HINT) -> Any:
    if not path.is_file():
        raise InputDataError(path, f"{what} not found: {hint}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputDataError(path, f"{what} is not valid JSON ({error})") from error


def _check_items(items: Any, key: str, datalist: Path, folder: Path) -> list[dict[str, Any]]:
    if not isinstance(items, list) or not items:
        raise InputDataError(datalist, f"needs a non-empty {key!r} list of studies")
    for item in items:
        if not isinstance(item, dict) or "image" not in item or "label" not in item:
            raise InputDataError(datalist, f"every {key!r} item needs 'image' and 'label', found {item!r}")
        images = item["image"] if isinstance(item["image"], list) else [item["image"]]
        for relative in [*images, item["label"]]:
            if not (folder / relative).is_file():
                raise InputDataError(folder / relative, f"listed in {datalist.name} but missing")
    return items


def load_fold(folder: str | Path, fold: int) -> FoldData:
    """Read and check fold ``fold`` of a dataset folder written by ``python -m scripts.data.prepare``.

    Raises:
        InputDataError: the folder, ``splits_final.json`` or the fold's datalist is missing or invalid, the
            fold does not exist, or a listed file is missing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputDataError(folder, "dataset folder not found (give the folder python -m scripts.data.prepare wrote)")
    splits = _read_json(folder / SPLITS_FILE, "the split file")
    if not isinstance(splits, list) or not 0 <= fold < len(splits):
        folds = len(splits) if isinstance(splits, list) else 0
        raise InputDataError(folder / SPLITS_FILE, f"has {folds} fold(s); fold {fold} does not exist")
    datalist_path = folder / fold_datalist_name(fold)
    datalist = _read_json(datalist_path, f"the datalist of fold {fold}")
    if not isinstance(datalist, dict):
        raise InputDataError(datalist_path, "expected a JSON object with 'training' and 'validation' lists")
    training = _check_items(datalist.get("training"), "training", datalist_path, folder)
    test = _check_items(datalist.get("validation"), "validation", datalist_path, folder)
    return FoldData(folder=folder, fold=fold, training=training, test=test)


def labelled_subset(data: FoldData, labelled: int | None) -> list[dict[str, Any]]:
    """The first ``labelled`` training items of the fold (all of them for ``None``): the same for every run."""
    if labelled is None:
        return list(data.training)
    if not 1 <= labelled <= len(data.training):
        available = len(data.training)
        raise InputDataError(
            data.datalist,
            f"fold {data.fold} has {available} training cases; --labelled {labelled} is not in 1..{available}",
        )
    return data.training[:labelled]


def check_pretrain_datalist(path: Path) -> Path:
    """``path`` if it is a JSON datalist with a non-empty ``training`` list (what ``pretrain.json`` reads)."""
    hint = "write one with python -m scripts.mae.write_pretraining_datalist"
    datalist = _read_json(path, "the pretraining datalist", hint)
    if not isinstance(datalist, dict) or not isinstance(datalist.get("training"), list) or not datalist["training"]:
        raise InputDataError(path, f"needs a non-empty 'training' list: {hint}")
    return path


def case_name(item: Mapping[str, Any]) -> str:
    """The item's case id (``scripts.data.prepare`` writes one), else its label file name."""
    return str(item.get("case") or Path(item["label"]).name)


@dataclass(frozen=True)
class Runtime:
    """Settings that change only the speed of a run, not its result; ``None`` keeps the config's value."""

    num_workers: int | None = None  # data-loading processes of every workflow
    cache_dir: Path | None = None  # the preprocessed studies (default: <out>/preprocessed); a fast local disk
    sw_batch_size: int | None = None  # sliding-window patches per forward pass at evaluation

    def training_overrides(self) -> dict[str, Any]:
        """The overrides for ``train.json`` and ``pretrain.json``."""
        return _given({"num_workers": self.num_workers})

    def evaluation_overrides(self) -> dict[str, Any]:
        """The overrides for ``inference.json`` + ``evaluate.json``."""
        return _given({"num_workers": self.num_workers, "sw_batch_size": self.sw_batch_size})


def _given(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class Protocol:
    """Everything one ablation run needs: inputs, arms, seeds, budget, runtime settings, the output folder."""

    data: FoldData
    labelled: list[dict[str, Any]]
    budget: Budget
    arms: list[Arm]
    seeds: list[int]
    out: Path
    pretrain_datalist: Path | None = None  # None: every study of the fold's datalist, written under out
    runtime: Runtime = field(default_factory=Runtime)
    figures: bool = False
    command: str = ""

    def pretrain_dir(self, variant: str, seed: int) -> Path:
        """The bundle root of the MAE pretraining of ``variant`` with ``seed``."""
        return self.out / "pretrain" / variant / f"seed{seed}"

    def run_dir(self, arm: Arm, seed: int) -> Path:
        """The bundle root of the fine-tuning (and evaluation) of ``arm`` with ``seed``."""
        return self.out / "runs" / arm.folder / f"seed{seed}"

    def cache_dir(self, stage: str) -> Path:
        """Where ``stage`` ("train" or "pretrain") keeps its preprocessed studies, shared by every arm and seed."""
        return (self.runtime.cache_dir or self.out / "preprocessed") / stage

    def record(self) -> dict[str, Any]:
        """What must stay the same for runs in one ``--out`` to be comparable (written to ``protocol.json``)."""
        return {
            "data": str(self.data.folder),
            "fold": self.data.fold,
            "labelled_cases": [case_name(item) for item in self.labelled],
            "test_cases": [case_name(item) for item in self.data.test],
            "pretrain_datalist": str(self.pretrain_datalist) if self.pretrain_datalist else None,
            "budget": asdict(self.budget),
        }
