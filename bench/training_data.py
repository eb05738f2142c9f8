# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Benchmark of training-data loading: the uncached chain against the preprocessed cache, per training sample.

For full-size synthetic FDG studies (400 x 400 x 326 at 2.036 x 2.036 x 3 mm, the median FDG grid) and PSMA
studies (200 x 200 x 417 at 4.073 x 4.073 x 2 mm, resampled to the FDG spacing by the chain), it prints:

* the one-off cost of storing a study (CPU-seconds) and its disk bytes, beside its NIfTI bytes;
* CPU-seconds per training sample (process time of the loader workers and the main process together) and
  samples per second, for 1, 2 and 4 loader workers, uncached (``train.json``'s deterministic chain, class
  locations, crop) and stored (``train.json`` as it is), each with and without augmentation (``train.json``'s
  random transforms after the crop), with the peak RSS of a loader worker;
* what each random transform costs at the paper patch (160 x 192 x 128, RAS x y z) when it fires, and per sample
  on average (times its probability), with MONAI's ``Rand3DElasticd`` beside the bundle's ``FastRand3DElasticd``;
* how many bytes of a stored study one patch read brings in from a cold page cache (``mincore``).

The studies are generated once into ``--data`` (default ``/tmp/bench_training_data``) and reused. Each loader
configuration runs in a fresh subprocess, so its worker RSS is its own. Run from the repository root::

    .venv/bin/python bench/training_data.py                       # everything (about 30 min on 2 busy cores)
    .venv/bin/python bench/training_data.py --tracers fdg --workers 1 --samples 4 16

Prints figures; it is not a test. See ``bench/README.md`` for the measured figures.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import resource
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLE_ROOT = REPO_ROOT / "bundle"
if str(BUNDLE_ROOT) not in sys.path:
    sys.path.insert(0, str(BUNDLE_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from monai.bundle import ConfigParser  # noqa: E402
from monai.data import DataLoader, Dataset, load_decathlon_datalist  # noqa: E402
from monai.transforms import Compose, EnsureTyped, Rand3DElasticd, RandCropByPosNegLabeld, SpatialPadd  # noqa: E402

from scripts.data.preprocessed_cache import PreprocessedCache  # noqa: E402
from scripts.data.preprocessed_dataset import PreprocessedDataset  # noqa: E402

TRACERS = {  # CT grid (LAS voxel order) and spacing of the synthetic studies
    "fdg": ((400, 400, 326), (2.036, 2.036, 3.0)),
    "psma": ((200, 200, 417), (4.073, 4.073, 2.0)),
}
TRAIN_CONFIG = BUNDLE_ROOT / "configs" / "train.json"
MIB = 1024.0 * 1024.0
CHILD_MARKER = "BENCH_ROW "


def train_config() -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(str(TRAIN_CONFIG))
    return parser


def ensure_studies(data: Path, tracer: str, studies: int) -> list[dict[str, Any]]:
    """The datalist items of ``studies`` synthetic studies of ``tracer`` under ``data``, generated if absent."""
    from scripts.data.prepare import prepare_dataset
    from scripts.synthetic import generate_cohort

    folder = data / f"{tracer}_{studies}"
    if not (folder / "datalist_all.json").is_file():
        shape, spacing = TRACERS[tracer]
        started = time.perf_counter()
        raw = data / f"raw_{tracer}_{studies}"
        generate_cohort(raw, studies, seed=11, tracer=tracer, shape=shape, spacing=spacing, negative_share=0.0,
                        longitudinal_share=0.0)  # fmt: skip
        prepare_dataset(raw, folder, n_folds=min(studies, 3), seed=0)
        print(f"generated {studies} {tracer} studies in {time.perf_counter() - started:.0f} s: {folder}", flush=True)
    return load_decathlon_datalist(str(folder / "datalist_all.json"), True, "training", str(folder))


def make_cache(parser: ConfigParser, cache_dir: Path) -> PreprocessedCache:
    parser["cache_dir"] = str(cache_dir)
    return parser.get_parsed_content("preprocessed_cache")


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# ------------------------------------------------------------------------------------------------ storing
def store_studies(items: list[dict[str, Any]], cache_dir: Path, fresh: bool) -> dict[str, Any]:
    """Store every study (afresh if ``fresh``; one process) and measure CPU-seconds and disk bytes per study."""
    if fresh:
        shutil.rmtree(cache_dir, ignore_errors=True)
    parser = train_config()
    cache = make_cache(parser, cache_dir)
    seconds, disk, source = [], [], []
    for item in items:
        started = time.process_time()
        study = cache.study(item)
        seconds.append(time.process_time() - started)
        disk.append(sum(p.stat().st_size for p in study.folder.iterdir()))
        files = [*item["image"], item["label"]]
        source.append(sum(os.path.getsize(f) for f in files))
    return {
        "store_cpu_s_per_study": float(np.median(seconds)),
        "disk_bytes_per_study": float(np.mean(disk)),
        "nifti_bytes_per_study": float(np.mean(source)),
        "stored_shape": list(study.image.shape),
    }


# --------------------------------------------------------------------------------------- loader timing
def loader_dataset(path: str, augment: bool, items: list[dict[str, Any]], cache_dir: Path) -> Dataset:
    """The training dataset of ``train.json`` (stored) or its uncached equivalent, with or without augmentation."""
    parser = train_config()
    random_transforms = parser.get_parsed_content("train#random_transforms")
    crop, augmentation = random_transforms[0], random_transforms[1:]
    tail = augmentation if augment else [EnsureTyped(keys=["image", "label"])]
    if path == "stored":
        return PreprocessedDataset(items, make_cache(parser, cache_dir), Compose([crop, *tail]))
    size = parser.get_parsed_content("roi_size")
    uncached_crop = [
        parser.get_parsed_content("preprocessed_cache#class_locations"),
        RandCropByPosNegLabeld(["image", "label"], "label", size, crop.pos_ratio, 1 - crop.pos_ratio,
                               fg_indices_key="fg_indices", bg_indices_key="bg_indices", allow_smaller=True),
        SpatialPadd(["image", "label"], size),
    ]  # fmt: skip
    chain = parser.get_parsed_content("preprocessing_transforms")
    return Dataset(items, Compose([*chain, *uncached_crop, *tail]))


def time_loader(path: str, augment: bool, workers: int, samples: int, items: list, cache_dir: Path) -> dict:
    """Draw ``samples`` training samples (batches of 2, as train.json) and measure them."""
    torch.set_num_threads(1)
    dataset = loader_dataset(path, augment, items, cache_dir)
    torch.manual_seed(0)  # the same studies and augmentation draws on every run of a configuration
    generator = torch.Generator().manual_seed(0)
    sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=samples, generator=generator)
    loader = DataLoader(dataset, batch_size=2, sampler=sampler, num_workers=workers, persistent_workers=False)
    cpu_before, wall_before = cpu_seconds(), time.perf_counter()
    drawn = 0
    for batch in loader:
        drawn += int(batch["image"].shape[0])
    del loader  # joins the workers, so their CPU time and peak RSS are in RUSAGE_CHILDREN
    wall = time.perf_counter() - wall_before
    cpu = cpu_seconds() - cpu_before
    worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {
        "path": path,
        "augment": augment,
        "workers": workers,
        "samples": drawn,
        "cpu_s_per_sample": cpu / drawn,
        "samples_per_s": drawn / wall,
        "peak_worker_rss_mib": worker_rss,
    }


def run_child(args: argparse.Namespace, tracer: str, path: str, augment: bool, workers: int, samples: int) -> dict:
    command = [sys.executable, __file__, "--child", tracer, path, str(int(augment)), str(workers), str(samples)]
    command += ["--data", str(args.data), "--studies", str(args.studies)]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    rows = [line[len(CHILD_MARKER) :] for line in result.stdout.splitlines() if line.startswith(CHILD_MARKER)]
    if result.returncode != 0 or not rows:
        return {"path": path, "augment": augment, "workers": workers, "failed": result.stderr[-2000:]}
    return json.loads(rows[0])


# -------------------------------------------------------------------------------- augmentation cost
def augmentation_costs(items: list[dict[str, Any]], cache_dir: Path, repeats: int) -> list[dict[str, Any]]:
    """Each random transform of train.json on real stored patches at the paper size, fired and not fired.

    Per sample = prob x (cost when it fires) + (1 - prob) x (cost when it does not): MONAI's ``Rand3DElasticd``
    pays most of its cost on the samples it leaves alone.
    """
    parser = train_config()
    random_transforms = parser.get_parsed_content("train#random_transforms")
    dataset = PreprocessedDataset(items, make_cache(parser, cache_dir), Compose([random_transforms[0]]))
    patches = [dataset[index % len(dataset)] for index in range(repeats)]
    elastic = next(t for t in random_transforms if type(t).__name__ == "FastRand3DElasticd")
    monai_elastic = Rand3DElasticd(
        keys=["image", "label"],
        prob=elastic.prob,
        sigma_range=elastic.rand_3d_elastic.sigma_range,
        magnitude_range=elastic.rand_3d_elastic.magnitude_range,
        mode=elastic.mode,
        padding_mode=elastic.padding_mode,
    )

    def median_cost(transform: Any, crop: bool) -> float:
        seconds = []
        for index, patch in enumerate(patches):
            data = dataset.cache.sample(items[index % len(items)]) if crop else patch
            data = {key: value.clone() if isinstance(value, torch.Tensor) else value for key, value in data.items()}
            started = time.process_time()
            transform(data)
            seconds.append(time.process_time() - started)
        return float(np.median(seconds))

    rows = []
    for transform in [*random_transforms, monai_elastic]:
        name = type(transform).__name__ + (" (MONAI)" if transform is monai_elastic else "")
        crop = transform is random_transforms[0]
        probability = float(getattr(transform, "prob", 1.0))
        if hasattr(transform, "prob"):
            transform.prob = 1.0
        fired = median_cost(transform, crop)
        if hasattr(transform, "prob"):
            transform.prob = 0.0
        unfired = median_cost(transform, crop) if probability < 1.0 else 0.0
        rows.append(
            {
                "transform": name,
                "prob": probability,
                "cpu_s_fired": fired,
                "cpu_s_not_fired": unfired,
                "cpu_s_per_sample": probability * fired + (1.0 - probability) * unfired,
            }
        )
    return rows


# ----------------------------------------------------------------------------------- bytes per patch
def resident_bytes(path: Path) -> int:
    """Bytes of ``path`` in the page cache (``mincore`` over a private mapping, which reads nothing itself)."""
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    vector = (ctypes.c_ubyte * pages)()
    libc = ctypes.CDLL(None, use_errno=True)
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY) as mapping:
        anchor = ctypes.c_char.from_buffer(mapping)
        try:
            if libc.mincore(ctypes.c_void_p(ctypes.addressof(anchor)), ctypes.c_size_t(size), vector) != 0:
                raise OSError(ctypes.get_errno(), "mincore failed")
        finally:
            del anchor
    return sum(v & 1 for v in vector) * mmap.PAGESIZE


def bytes_per_patch(items: list[dict[str, Any]], cache_dir: Path, repeats: int) -> dict[str, Any] | None:
    """Drop a stored study's pages from the page cache, read one patch, count what came back in.

    Also gives the patch's z-slab: the bytes of every stored file between the patch's first and last z slice
    (the channels are stored z-slowest, so that is what a patch read needs at page granularity).
    """
    parser = train_config()
    crop = parser.get_parsed_content("train#random_transforms")[0]
    cache = make_cache(parser, cache_dir)
    touched, slabs, totals = [], [], []
    for index in range(repeats):
        item = items[index % len(items)]
        study = cache.study(item)
        files = sorted(study.folder.glob("*.npy"))
        for file in files:
            with open(file, "rb") as handle:
                os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        if sum(resident_bytes(f) for f in files) > 0.05 * sum(f.stat().st_size for f in files):
            return None  # this file system keeps the pages (tmpfs, for example): nothing to measure
        crop.set_random_state(index)
        patch = crop(cache.sample(item))["image"]
        touched.append(sum(resident_bytes(f) for f in files))
        depth, z_size = min(patch.shape[-1], study.image.shape[-1]), study.image.shape[-1]
        volumes = [f for f in files if np.load(f, mmap_mode="r").ndim == 3]
        slabs.append(sum(f.stat().st_size for f in volumes) * depth / z_size)
        totals.append(sum(f.stat().st_size for f in files))
    return {
        "resident_after_one_patch_bytes": float(np.median(touched)),
        "patch_z_slab_bytes": float(np.median(slabs)),
        "entry_bytes": float(np.median(totals)),
    }


# ------------------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/bench_training_data"))
    parser.add_argument("--studies", type=int, default=3, help="studies per tracer")
    parser.add_argument("--tracers", nargs="+", choices=sorted(TRACERS), default=sorted(TRACERS))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--paths", nargs="+", choices=["uncached", "stored"], default=["stored", "uncached"])
    parser.add_argument("--samples", type=int, nargs=2, default=[8, 160], metavar=("UNCACHED", "STORED"))
    parser.add_argument("--aug-repeats", type=int, default=6, help="patches per transform in the cost table")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON")
    sections = ["store", "touch", "augment", "loader"]
    parser.add_argument("--sections", nargs="+", choices=sections, default=sections, help="what to measure")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)

    if args.child:
        tracer, path, augment, workers, samples = args.child
        items = ensure_studies(args.data, tracer, args.studies)
        row = time_loader(path, bool(int(augment)), int(workers), int(samples), items, args.data / f"cache_{tracer}")
        print(CHILD_MARKER + json.dumps(row), flush=True)
        return

    print(f"cpu cores visible: {os.cpu_count()}; torch threads 1; each loader configuration in a fresh process")
    report: dict[str, Any] = {"tracers": {}}
    for tracer in args.tracers:
        items = ensure_studies(args.data, tracer, args.studies)
        cache_dir = args.data / f"cache_{tracer}"
        stored = store_studies(items, cache_dir, fresh="store" in args.sections)
        print(f"\n== {tracer}: {len(items)} studies, stored shape {stored['stored_shape']}")
        if "store" in args.sections:
            print(f"storing: {stored['store_cpu_s_per_study']:.1f} CPU-s per study (once)")
        disk, nifti = stored["disk_bytes_per_study"] / MIB, stored["nifti_bytes_per_study"] / MIB
        print(f"disk: {disk:.0f} MiB per study stored (its NIfTI files: {nifti:.0f} MiB)")
        touch = bytes_per_patch(items, cache_dir, repeats=3) if "touch" in args.sections else None
        if touch:
            print(
                f"one patch read from a cold page cache brings in {touch['resident_after_one_patch_bytes'] / MIB:.0f}"
                f" MiB of the entry's {touch['entry_bytes'] / MIB:.0f} MiB (the patch's z-slab: "
                f"{touch['patch_z_slab_bytes'] / MIB:.0f} MiB; the rest is kernel read-ahead)"
            )
        costs = augmentation_costs(items, cache_dir, args.aug_repeats) if "augment" in args.sections else []
        if costs:
            print(f"{'transform':<34} {'prob':>5} {'CPU-s fired':>12} {'not fired':>10} {'per sample':>11}")
        for row in costs:
            print(
                f"{row['transform']:<34} {row['prob']:>5.2f} {row['cpu_s_fired']:>12.3f}"
                f" {row['cpu_s_not_fired']:>10.3f} {row['cpu_s_per_sample']:>11.3f}"
            )
        if costs:
            expected = sum(r["cpu_s_per_sample"] for r in costs if "(MONAI)" not in r["transform"])
            print(f"{'sum (crop + augmentation)':<34} {'':>5} {'':>12} {'':>10} {expected:>11.3f}")
        rows = []
        header = f"{'path':<9} {'augment':<8} {'workers':>7} {'samples':>7} {'CPU-s/sample':>13} {'samples/s':>10}"
        print(f"\n{header} {'worker RSS MiB':>15}")
        for path in args.paths if "loader" in args.sections else []:
            samples = args.samples[0] if path == "uncached" else args.samples[1]
            for augment in (False, True):
                for workers in args.workers:
                    row = run_child(args, tracer, path, augment, workers, samples)
                    rows.append(row)
                    if "failed" in row:
                        print(f"{path:<9} {str(augment):<8} {workers:>7} failed: {row['failed'][-300:]}")
                        continue
                    print(
                        f"{path:<9} {str(augment):<8} {workers:>7} {row['samples']:>7} {row['cpu_s_per_sample']:>13.3f}"
                        f" {row['samples_per_s']:>10.2f} {row['peak_worker_rss_mib']:>15.0f}",
                        flush=True,
                    )
        report["tracers"][tracer] = {"storing": stored, "patch_touch": touch, "augmentation": costs, "loader": rows}
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
