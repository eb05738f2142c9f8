# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Print MAE figures on this machine: masking cost at the paper patch, parameter counts, CPU step times.

Run from ``bundle/``: ``python -m scripts.mae.benchmark [--size 64] [--repeats 3]``. Not a test: numbers only.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import torch
from scripts.mae.batch import MAEPrepareBatch
from scripts.mae.loss import MaskedReconstructionLoss
from scripts.mae.masking import RandBlockMaskd
from scripts.mae.model import MAEReconstructor
from scripts.networks.unet import PAPER_ROI_SIZE


def best_of(function: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` timed calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def count(module: torch.nn.Module) -> int:
    """Number of parameters."""
    return sum(parameter.numel() for parameter in module.parameters())


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures; returns 0."""
    parser = argparse.ArgumentParser(prog="python -m scripts.mae.benchmark", description=__doc__)
    parser.add_argument("--size", type=int, default=64, help="cubic patch edge for the step timing (default 64)")
    parser.add_argument("--batch", type=int, default=1, help="batch size for the step timing (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats, the best is printed (default 3)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)

    image = torch.randn(2, *PAPER_ROI_SIZE)
    masker = RandBlockMaskd(block_size=16, ratio=0.75, modality_dropout_prob=0.25)
    masker.set_random_state(seed=0)
    seconds = best_of(lambda: masker({"image": image}), args.repeats)
    print(f"RandBlockMaskd, 2 x {PAPER_ROI_SIZE} patch, block 16, ratio 0.75: {seconds * 1e3:.0f} ms per sample")

    for decoder in ("unet", "light"):
        torch.manual_seed(0)
        mae = MAEReconstructor(decoder=decoder)
        optimizer = torch.optim.AdamW(mae.parameters(), lr=1e-4)
        loss_function, prepare = MaskedReconstructionLoss(), MAEPrepareBatch()
        samples = [masker({"image": torch.randn(2, args.size, args.size, args.size)}) for _ in range(args.batch)]
        batch = {key: torch.stack([s[key] for s in samples]) for key in ("image", "target", "mask", "channel_valid")}

        def step(mae=mae, optimizer=optimizer, loss_function=loss_function, prepare=prepare, batch=batch) -> None:
            inputs, targets = prepare(batch)
            optimizer.zero_grad()
            loss_function(mae(inputs), targets).backward()
            optimizer.step()

        seconds = best_of(step, args.repeats)
        print(
            f"MAEReconstructor(decoder={decoder!r}) at paper widths: encoder {count(mae.encoder):,} + decoder "
            f"{count(mae.decoder):,} parameters; one AdamW step on {args.batch} x 2 x {args.size}^3, 1 CPU thread: "
            f"{seconds:.2f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
