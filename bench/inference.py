# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Benchmark of whole-volume inference: the BiXLSTM-ResNet UNet variants beside a MONAI DynUNet.

For each network (the ``bot``, ``enc`` and ``none`` variants of ``BiXLSTMResUNet`` and a ``DynUNet`` with the
same widths, strides, 3x3x3 kernels and residual blocks), with and without flip TTA, the bundle's real
``FlipTTASlidingWindowInferer`` segments one random volume (1, 2, X, Y, Z) with random-weight networks in eval
mode. Each configuration gets a warm-up call, then ``--repeats`` timed calls, and reports:

* wall time per inference (median and min over the timed calls) and time per network forward call;
* voxels of the volume per second, and the time ratio to the DynUNet under the same TTA setting (the figure to
  trust on a noisy machine);
* peak resident memory (RSS) of the configuration, and on CUDA ``torch.cuda.max_memory_allocated``.

Peak RSS is the configuration's own: on Linux the process high-water mark is reset before each configuration
(``/proc/self/clear_refs``); where that is refused, the table says that the figure is the process peak so far.
``--isolate`` runs each configuration in a fresh subprocess instead.

Run from the repository root, e.g. a quick CPU check::

    .venv/bin/python bench/inference.py --shape 96 96 96 --roi 64 64 64 --features 8 16 32 64 --strides 1 2 2 2

Prints figures; it is not a test. See ``bench/README.md`` for the measured figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLE_ROOT = REPO_ROOT / "bundle"
if str(BUNDLE_ROOT) not in sys.path:
    sys.path.insert(0, str(BUNDLE_ROOT))

from scripts.atomic_io import write_json  # noqa: E402
from scripts.inference.inferers import FlipTTASlidingWindowInferer  # noqa: E402
from scripts.networks import BiXLSTMResUNet  # noqa: E402
from scripts.networks.unet import PAPER_FEATURES, PAPER_STRIDES  # noqa: E402

DEFAULT_SHAPE = (400, 400, 326)  # a median whole-body FDG volume at 2.036 x 2.036 x 3 mm, RAS x y z
DEFAULT_ROI = (160, 192, 128)  # the paper's 128 x 192 x 160 (z y x) patch in RAS x y z order
VARIANTS = ("bot", "enc", "none")
REFERENCE = "dynunet"
IN_CHANNELS = 2  # CT = 0, PET = 1
NUM_CLASSES = 2
CHILD_MARKER = "BENCH_RESULT_JSON "
MIB = 1024.0 * 1024.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; see ``--help``."""
    parser = argparse.ArgumentParser(
        description="Time sliding-window inference with flip TTA for BiXLSTM-ResNet UNet variants and a DynUNet."
    )
    parser.add_argument("--shape", type=int, nargs=3, default=list(DEFAULT_SHAPE), metavar=("X", "Y", "Z"))
    parser.add_argument("--roi", type=int, nargs=3, default=list(DEFAULT_ROI), metavar=("X", "Y", "Z"))
    parser.add_argument("--features", type=int, nargs="+", default=list(PAPER_FEATURES))
    parser.add_argument("--strides", type=int, nargs="+", default=list(PAPER_STRIDES))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--tta-axes", type=int, nargs="+", default=[0, 1, 2], help="spatial axes for flip TTA")
    tta = parser.add_mutually_exclusive_group()
    tta.add_argument("--tta-only", action="store_true", help="measure only with flip TTA")
    tta.add_argument("--no-tta-only", action="store_true", help="measure only without flip TTA")
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--sw-batch-size", type=int, default=1)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", action="store_true", help="autocast the networks on CUDA (ignored on CPU)")
    parser.add_argument("--amp-dtype", choices=("bfloat16", "float16"), default="bfloat16")
    parser.add_argument("--no-cudnn-benchmark", action="store_true", help="leave cudnn.benchmark off on CUDA")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per configuration")
    parser.add_argument(
        "--warmup",
        choices=("window", "full"),
        default="window",
        help="warm-up call on one roi-sized crop (same kernels, cheap) or on the full volume",
    )
    parser.add_argument("--isolate", action="store_true", help="run each configuration in a fresh subprocess")
    parser.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="skip a TTA run whose estimate (from its no-TTA time) would end past this many seconds",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the results as JSON")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if len(args.strides) != len(args.features):
        parser.error(f"--strides needs one value per --features entry ({len(args.features)}), got {args.strides}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda asked for, but torch sees no CUDA device")
    return args


def build_network(name: str, features: Sequence[int], strides: Sequence[int]) -> nn.Module:
    """A random-weight network in eval mode: a ``BiXLSTMResUNet`` variant or the matching ``DynUNet``."""
    if name == REFERENCE:
        from monai.networks.nets import DynUNet

        network: nn.Module = DynUNet(
            spatial_dims=3,
            in_channels=IN_CHANNELS,
            out_channels=NUM_CLASSES,
            kernel_size=[3] * len(features),
            strides=list(strides),
            upsample_kernel_size=list(strides[1:]),
            filters=list(features),
            norm_name=("instance", {"affine": True}),
            act_name=("leakyrelu", {"negative_slope": 0.01, "inplace": True}),
            res_block=True,
        )
    else:
        network = BiXLSTMResUNet(
            in_channels=IN_CHANNELS, out_channels=NUM_CLASSES, features=features, strides=strides, xlstm=name
        )
    return network.eval()


def reset_peak_rss() -> str:
    """Reset this process's RSS high-water mark; returns the scope later peaks cover: ``config`` or ``process``."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return "config"
    except OSError:
        return "process"


def current_and_peak_rss_mib() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB, from /proc, else ``getrusage`` (peak only)."""
    try:
        status = Path("/proc/self/status").read_text()
        current = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
        return current / 1024.0, peak / 1024.0
    except (OSError, AttributeError):
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return float("nan"), peak_kib / 1024.0


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work, so that wall time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, flip_axes: Sequence[int], args: argparse.Namespace) -> dict[str, Any]:
    """Time one network under one TTA setting in this process; the result record of one table row."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gc.collect()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    rss_scope = reset_peak_rss()
    rss_start, _ = current_and_peak_rss_mib()

    torch.manual_seed(args.seed)
    network = build_network(name, args.features, args.strides).to(device)
    volume = torch.randn(1, IN_CHANNELS, *args.shape, device=device)
    inferer = FlipTTASlidingWindowInferer(
        roi_size=list(args.roi),
        sw_batch_size=args.sw_batch_size,
        overlap=args.overlap,
        flip_axes=list(flip_axes),
        amp=args.amp,
        amp_dtype=args.amp_dtype,
    )
    forward_calls = {"count": 0}

    def count_call(module: nn.Module, inputs: tuple[Any, ...]) -> None:
        forward_calls["count"] += 1

    network.register_forward_pre_hook(count_call)

    warmup_input = volume if args.warmup == "full" else volume[(...,) + tuple(slice(0, size) for size in args.roi)]
    start = time.perf_counter()
    output = inferer(warmup_input, network)
    synchronize(device)
    warmup_s = time.perf_counter() - start
    del output, warmup_input

    forward_calls["count"] = 0
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        output = inferer(volume, network)
        synchronize(device)
        times.append(time.perf_counter() - start)
        del output
    calls = forward_calls["count"] // args.repeats

    _, rss_peak = current_and_peak_rss_mib()
    median_s = statistics.median(times)
    return {
        "network": name,
        "parameters": sum(parameter.numel() for parameter in network.parameters()),
        "flip_axes": list(flip_axes),
        "flips": 2 ** len(flip_axes),
        "status": "ok",
        "forward_calls": calls,
        "warmup_s": warmup_s,
        "times_s": times,
        "median_s": median_s,
        "min_s": min(times),
        "ms_per_call": 1000.0 * median_s / max(calls, 1),
        "voxels_per_s": volume[0, 0].numel() / median_s,
        "rss_start_mib": rss_start,
        "rss_peak_mib": rss_peak,
        "rss_scope": rss_scope,
        "gpu_peak_mib": torch.cuda.max_memory_allocated(device) / MIB if device.type == "cuda" else None,
    }


def measure_isolated(name: str, flip_axes: Sequence[int], args: argparse.Namespace) -> dict[str, Any]:
    """Run :func:`measure` in a fresh Python process, so that its peak RSS is that configuration's alone."""
    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    request = json.dumps({"network": name, "flip_axes": list(flip_axes), "settings": settings})
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", request], capture_output=True, text=True
    )
    for line in done.stdout.splitlines():
        if line.startswith(CHILD_MARKER):
            return json.loads(line[len(CHILD_MARKER) :])
    raise RuntimeError(f"the child process for {name} exited with {done.returncode}: {done.stderr.strip()[-2000:]}")


def run_child(request_json: str) -> None:
    """Entry point of an ``--isolate`` child: measure one configuration and print its record as one JSON line."""
    request = json.loads(request_json)
    args = argparse.Namespace(**request["settings"])
    record = measure(request["network"], request["flip_axes"], args)
    print(CHILD_MARKER + json.dumps(record), flush=True)


def planned_configurations(args: argparse.Namespace) -> list[tuple[str, tuple[int, ...]]]:
    """(network, flip axes) pairs in run order: every plain run first, then the TTA runs; DynUNet first in each."""
    networks = [REFERENCE, *args.variants]
    settings: list[tuple[int, ...]] = []
    if not args.tta_only:
        settings.append(())
    if not args.no_tta_only:
        settings.append(tuple(args.tta_axes))
    return [(network, axes) for axes in settings for network in networks]


def estimated_seconds(name: str, flip_axes: Sequence[int], records: Sequence[dict[str, Any]], repeats: int) -> float:
    """Expected run time of a TTA configuration from the same network's plain run (``nan`` when none was run)."""
    for record in records:
        if record["network"] == name and not record["flip_axes"] and record["status"] == "ok":
            flips = 2 ** len(flip_axes)
            return record["median_s"] * flips * repeats + record["warmup_s"] * flips
    return float("nan")


def add_ratios(records: list[dict[str, Any]]) -> None:
    """Set each record's ``ratio_to_dynunet``: its median time over the DynUNet's under the same TTA setting."""
    reference = {
        tuple(record["flip_axes"]): record["median_s"]
        for record in records
        if record["network"] == REFERENCE and record["status"] == "ok"
    }
    for record in records:
        base = reference.get(tuple(record["flip_axes"]))
        ok = record["status"] == "ok" and base is not None
        record["ratio_to_dynunet"] = record["median_s"] / base if ok else None


def environment(args: argparse.Namespace) -> dict[str, Any]:
    """Versions and hardware, so that figures from different machines are not compared by mistake."""
    import monai

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": args.threads,
    }
    if args.device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        info["cudnn_benchmark"] = not args.no_cudnn_benchmark
    return info


def _cpu_model() -> str:
    try:
        match = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        return match.group(1).strip() if match else platform.processor()
    except OSError:
        return platform.processor()


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """The results as a fixed-width text table, one row per configuration."""
    header = (
        f"{'network':<8} {'flips':>5} {'calls':>6} {'median s':>9} {'min s':>8} {'ms/call':>8} "
        f"{'Mvox/s':>7} {'x DynUNet':>9} {'peak RSS MiB':>12} {'peak GPU MiB':>12}"
    )
    lines = [header, "-" * len(header)]
    for record in records:
        if record["status"] != "ok":
            lines.append(f"{record['network']:<8} {record['flips']:>5}  {record['status']}: {record['note']}")
            continue
        rss = _cell(record["rss_peak_mib"], ".0f") + ("" if record["rss_scope"] == "config" else "*")
        lines.append(
            f"{record['network']:<8} {record['flips']:>5} {record['forward_calls']:>6} {record['median_s']:>9.2f} "
            f"{record['min_s']:>8.2f} {record['ms_per_call']:>8.1f} {record['voxels_per_s'] / 1e6:>7.3f} "
            f"{_cell(record['ratio_to_dynunet'], '.2f'):>9} {rss:>12} {_cell(record['gpu_peak_mib'], '.0f'):>12}"
        )
    if any(record.get("rss_scope") == "process" for record in records):
        lines.append("* process peak so far (this system refused to reset the high-water mark)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every configuration, print the table, and write ``--json`` after each configuration."""
    args = parse_args(argv)
    if args.child is not None:
        run_child(args.child)
        return 0
    torch.set_num_threads(args.threads)
    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    settings.pop("child")
    report: dict[str, Any] = {"settings": settings, "environment": environment(args), "results": []}
    records: list[dict[str, Any]] = report["results"]
    print(json.dumps(report["environment"]), flush=True)
    if args.amp and args.device == "cpu":
        print("note: --amp has no effect on CPU (the inferer autocasts on CUDA only)", flush=True)

    started = time.perf_counter()
    for name, flip_axes in planned_configurations(args):
        skip = {"network": name, "flip_axes": list(flip_axes), "flips": 2 ** len(flip_axes)}
        estimate = estimated_seconds(name, flip_axes, records, args.repeats)
        remaining = None if args.time_budget is None else args.time_budget - (time.perf_counter() - started)
        if flip_axes and remaining is not None and estimate > remaining:
            records.append({**skip, "status": "skipped", "note": f"est. {estimate:.0f} s > {remaining:.0f} s left"})
        else:
            try:
                record = measure_isolated(name, flip_axes, args) if args.isolate else measure(name, flip_axes, args)
                records.append(record)
            except (RuntimeError, ValueError) as error:  # e.g. CUDA out of memory: keep the other rows
                records.append({**skip, "status": "failed", "note": str(error).splitlines()[0][:200]})
        row = records[-1]
        detail = f"{row['median_s']:.2f} s" if row["status"] == "ok" else row["note"]
        print(f"[{time.perf_counter() - started:7.1f} s] {name} flips={row['flips']}: {detail}", flush=True)
        add_ratios(records)
        if args.json is not None:
            write_json(report, args.json)

    autocast = args.amp_dtype if args.amp and args.device == "cuda" else "off"
    print()
    print(
        f"volume {args.shape[0]}x{args.shape[1]}x{args.shape[2]} (RAS x y z), roi {args.roi}, overlap {args.overlap}, "
        f"sw_batch_size {args.sw_batch_size}, device {args.device}, amp {autocast}, "
        f"threads {args.threads}, repeats {args.repeats}"
    )
    print(format_table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
