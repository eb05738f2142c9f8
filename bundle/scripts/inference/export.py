# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Export the network for deployment with ``torch.export`` (a ``.pt2`` ExportedProgram), checked against eager.

TorchScript scripting (``monai.bundle ckpt_export`` without ``--use_trace``) fails inside the ``xlstm`` package,
whose blocks are not scriptable. ``torch.export`` traces the network for one window size (the sliding-window roi),
which is all a sliding-window deployment needs; the exported program is checked to reproduce the eager output.

    cd bundle && python -m scripts.inference.export --checkpoint models/fold0/model.pt --out models/model.pt2 \
        [--config configs/inference.json] [--set xlstm='"enc"'] [--set roi_size='[160,192,128]']
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from monai.bundle import ConfigParser
from scripts.atomic_io import atomic_path
from scripts.errors import say
from scripts.inference.checkpoints import read_state_dict


def export_network(
    network: torch.nn.Module,
    roi_size: Sequence[int],
    out_path: str | os.PathLike,
    in_channels: int = 2,
    atol: float = 1e-4,
) -> Path:
    """Export ``network`` (eval mode) for inputs ``(1, in_channels, *roi_size)``; verify, then save atomically.

    Raises:
        RuntimeError: the exported program's output differs from the eager output by more than ``atol``.
    """
    network = network.eval()
    example = torch.randn(1, in_channels, *roi_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        program = torch.export.export(network, (example,))
        expected, actual = network(example), program.module()(example)
    error = float((expected - actual).abs().max())
    if error > atol:
        raise RuntimeError(f"the exported program differs from the eager network by {error:.3g} (> {atol})")
    with atomic_path(out_path) as tmp:
        torch.export.save(program, str(tmp))
    return Path(out_path)


def main(argv: Sequence[str] | None = None) -> int:
    """Build ``network_def`` from a bundle config, load a checkpoint, export at the config's ``roi_size``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--config", default="configs/inference.json")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="config override")
    args = parser.parse_args(argv)
    config = ConfigParser()
    config.read_config(args.config)
    for item in args.set:
        key, value = item.split("=", 1)
        config[key] = json.loads(value)
    network = config.get_parsed_content("network_def")
    network.load_state_dict(read_state_dict(args.checkpoint))
    roi_size = config.get_parsed_content("roi_size")
    path = export_network(network, roi_size, args.out, in_channels=network.in_channels)
    say(f"exported for inputs (1, {network.in_channels}, {', '.join(map(str, roi_size))}) to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
