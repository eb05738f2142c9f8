# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Where the bundle configs are, and how to read their default values."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser

BUNDLE_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = BUNDLE_ROOT / "configs"
PRETRAIN_CONFIG = ("train.json", "pretrain.json")  # pretrain.json is an overlay on train.json
TRAIN_CONFIG = "train.json"
EVALUATE_CONFIGS = ("inference.json", "evaluate.json")  # evaluate.json is an overlay on inference.json


def config_paths(names: str | Iterable[str]) -> list[str]:
    """Absolute paths of bundle config files given by name (``"train.json"``)."""
    return [str(CONFIG_DIR / name) for name in ([names] if isinstance(names, str) else names)]


def config_values(names: str | Iterable[str], keys: Iterable[str]) -> dict[str, Any]:
    """The parsed values of ``keys`` in the config(s) ``names``, as a workflow would see them without overrides."""
    parser = ConfigParser()
    parser.read_config(config_paths(names))
    return {key: parser.get_parsed_content(key) for key in keys}
