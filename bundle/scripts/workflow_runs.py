# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Run a bundle workflow from Python exactly as ``python -m monai.bundle run`` does, and say the command."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monai.bundle import run as run_bundle

BUNDLE_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = BUNDLE_ROOT / "configs"


def _flag(value: Any) -> str:
    """A ``monai.bundle run`` flag value: strings as they are, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def workflow_command(config_names: Sequence[str], overrides: dict[str, Any]) -> str:
    """The shell command that runs ``configs/<name>`` (merged in order) with ``overrides``."""
    files = [str(CONFIGS / name) for name in config_names]
    flags = " ".join(f"--{key} {shlex.quote(_flag(value))}" for key, value in overrides.items())
    return f"cd {BUNDLE_ROOT} && python -m monai.bundle run --config_file {shlex.quote(json.dumps(files))} {flags}"


def run_workflow(config_names: Sequence[str], overrides: dict[str, Any]) -> str:
    """Print the command, run the workflow in this process and return the command."""
    command = workflow_command(config_names, overrides)
    print(command, flush=True)
    run_bundle(config_file=[str(CONFIGS / name) for name in config_names], **overrides)
    return command
