# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Build a config's preprocessed cache ahead of training, with many processes (optional: training builds it too).

Run from ``bundle/``, with the overrides the training will get (they decide the studies and the settings)::

    python -m scripts.data.build_cache --config_file configs/train.json --dataset_dir DATASET --fold 0 --workers 16
    python -m scripts.data.build_cache --config_file configs/pretrain.json --datalist PRETRAIN.json --workers 16

It instantiates the config's datasets (``train#dataset``, and ``validate#dataset`` where the config has one),
whose construction stores every missing study; ``--workers`` sets the config's ``num_workers``. Exit status 1 with
``error: <file>: <problem>`` for bad input or a cache built with other settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from monai.bundle import ConfigParser
from scripts.errors import InputDataError

DATASET_IDS = ("train#dataset", "validate#dataset")


def _value(text: str) -> Any:
    """A command-line value as JSON if it parses (numbers, lists, true/false), else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_overrides(extra: Sequence[str]) -> dict[str, Any]:
    """``["--fold", "0", "--dataset_dir", "/d"]`` -> ``{"fold": 0, "dataset_dir": "/d"}``, as ``monai.bundle run``."""
    if len(extra) % 2 or any(not key.startswith("--") for key in extra[::2]):
        raise SystemExit(f"overrides must come as --id value pairs, got {' '.join(extra)}")
    return {key[2:]: _value(value) for key, value in zip(extra[::2], extra[1::2], strict=True)}


def build_cache(config_files: Sequence[str], overrides: dict[str, Any], workers: int | None = None) -> list[str]:
    """Instantiate the configs' datasets (which stores what is missing); the dataset ids built."""
    parser = ConfigParser()
    parser.read_config(list(config_files))
    parser.update(overrides)
    if workers is not None:
        parser["num_workers"] = workers
    built = [dataset_id for dataset_id in DATASET_IDS if dataset_id in parser]
    for dataset_id in built:
        parser.get_parsed_content(dataset_id)
    return built


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config_file", nargs="+", required=True, help="config file(s), e.g. configs/train.json")
    parser.add_argument("--workers", type=int, help="processes that build entries (default: the config's)")
    args, extra = parser.parse_known_args(argv)
    try:
        built = build_cache(args.config_file, parse_overrides(extra), args.workers)
    except Exception as error:  # MONAI wraps errors of instantiated components: report the data error inside
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, InputDataError):
            cause = cause.__cause__
        if cause is None:
            raise
        print(f"error: {cause}", file=sys.stderr)
        return 1
    print(f"stored: {', '.join(built)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
