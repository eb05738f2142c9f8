# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Run the deterministic preprocessing once per study and keep its output on disk, memory-mappable.

Longer than 300 lines because the entry key, the staleness check, the locked atomic build and the reader share
one entry format and must change together; split, each part would reach into the others' internals.

Layout of ``cache_dir`` (docs/preprocessed_cache.md)::

    settings.json                 what every entry was built with (the transforms' parameters, described)
    <entry id>/image_0.npy ...    one float32 .npy per image channel, [X, Y, Z] in Fortran order (z slowest, so a
                                  patch reads whole contiguous slabs); a constant channel is only recorded
               label_0.npy        the label, uint8 when it holds small whole numbers
               fg_indices.npy ... the small arrays the chain added (class locations, channel flags)
               entry.json         written last: shapes, affine, source files (size, mtime), settings digest
    .locks/<entry id>.lock        one builder per entry at a time (``flock``)
    .building/<entry id>/...      entries being built; renamed into place only when complete

An entry is keyed by its study's source paths. It is rebuilt when a source file changes (size or mtime) or when a
label is needed that it lacks; a ``cache_dir`` built with other settings is refused, naming each setting that
differs. Several loader workers, DDP ranks or machines on a shared disk may read and build at once: a builder
holds the entry's lock, writes under ``.building`` and renames the finished folder into place, so an entry
is either absent or complete, and a killed build leaves only a leftover that the next builder removes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import monai
import numpy as np
import torch
from monai.transforms import Compose, MapTransform, apply_transform
from monai.utils import convert_to_numpy
from scripts.atomic_io import staging_path
from scripts.data.cache_settings import describe, differences, digest
from scripts.data.file_layout import NNUNET_CT_SUFFIX, safe_name, strip_nifti_suffix
from scripts.data.pet_ct_files import PET_FILENAME_KEY, PET_KEY, pet_partner_candidates
from scripts.data.stored_volumes import StoredChannel, StoredVolume
from scripts.errors import InputDataError

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
SETTINGS_FILE = "settings.json"
ENTRY_FILE = "entry.json"
LOCK_DIR = ".locks"
BUILD_DIR = ".building"
_KEPT_META = ("filename_or_obj", PET_FILENAME_KEY)


@dataclass(frozen=True)
class StoredStudy:
    """A complete cache entry: the image, the label if stored, and the small arrays the chain added."""

    entry_id: str
    folder: Path
    image: StoredVolume
    label: StoredVolume | None
    arrays: tuple[Mapping[str, Any], ...]  # {"key", "file", "tensor", "with_label"}

    def load_arrays(self, with_label: bool) -> dict[str, Any]:
        """The small arrays (class locations only ``with_label``), as the chain gave them (numpy or torch)."""
        loaded = {}
        for record in self.arrays:
            if record["with_label"] and not with_label:
                continue
            path = self.folder / record["file"]
            try:
                array = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as error:
                raise self.image.damaged(path, f"{type(error).__name__}: {error}") from error
            loaded[record["key"]] = torch.from_numpy(array) if record["tensor"] else array
        return loaded


@dataclass(frozen=True)
class _StudyKey:
    entry_id: str
    name: str
    image_sources: tuple[str, ...]
    label_source: str | None


def _study_name(ct_path: str) -> str:
    """``case_0000.nii.gz`` -> ``case``: the CT file name without its NIfTI suffix and nnU-Net CT channel."""
    name = strip_nifti_suffix(Path(ct_path).name)
    return name[: -len(NNUNET_CT_SUFFIX)] if name.endswith(NNUNET_CT_SUFFIX) else name


def _file_record(path: str) -> dict[str, Any] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return {"path": path, "size": status.st_size, "mtime_ns": status.st_mtime_ns}


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Save ``array`` in its own memory order (a Fortran-ordered volume stays so: z slowest), fsynced."""
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _label_dtype(array: np.ndarray) -> np.dtype:
    """uint8 when every value is a whole number in [0, 255] (a mask), else float32."""
    if array.size and np.array_equal(array, np.rint(array)) and array.min() >= 0 and array.max() <= 255:
        return np.dtype(np.uint8)
    return np.dtype(np.float32)


class PreprocessedCache:
    """Stores the output of a deterministic preprocessing chain per study under ``cache_dir`` (module docstring).

    Args:
        cache_dir: where the entries go; created if absent. Put it on a fast local disk.
        preprocessing: the deterministic transforms (a list or a ``Compose``), e.g. the configs'
            ``preprocessing_transforms``; they must not be random.
        image_key: the key of the channel-first image the chain produces.
        label_key: the label key, or ``None`` (pretraining); an item without a label is stored without one.
        class_locations: a transform run after the chain on labelled studies, e.g.
            :class:`~scripts.transforms.ClassLocationsd`; the arrays it adds are stored with the label.

    Raises:
        InputDataError: ``cache_dir`` holds entries built with other settings (the message names each one).
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike,
        preprocessing: Sequence[MapTransform] | Compose,
        image_key: str = "image",
        label_key: str | None = None,
        class_locations: MapTransform | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir).absolute()
        transforms = list(preprocessing.transforms if isinstance(preprocessing, Compose) else preprocessing)
        self.preprocessing = Compose(transforms)
        self.image_key, self.label_key = image_key, label_key
        self.class_locations = class_locations
        self.settings = {
            "format": CACHE_FORMAT,
            "image_key": image_key,
            "label_key": label_key,
            "preprocessing": describe(transforms),
            "class_locations": describe(class_locations),
        }
        self.settings_digest = digest(self.settings)
        self._check_settings()

    # ----------------------------------------------------------------------------------------------- settings
    def _check_settings(self) -> None:
        path = self.cache_dir / SETTINGS_FILE
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        if not path.is_file():
            self._create_settings_file(path)
        try:
            stored = json.loads(path.read_text())
            stored_settings = stored["settings"]
        except (ValueError, KeyError, TypeError) as error:
            raise InputDataError(path, f"not a preprocessed-cache settings file ({error})") from error
        if digest(stored_settings) != self.settings_digest:
            changed = differences(stored_settings, self.settings) or ["(the settings differ)"]
            raise InputDataError(
                path,
                "this preprocessed cache was built with other settings than this run's: "
                + "; ".join(changed)
                + ". Pass another cache_dir (e.g. --cache_dir NEW_DIR), or delete "
                f"{self.cache_dir} to rebuild it with this run's settings",
            )

    def _create_settings_file(self, path: Path) -> None:
        """Write ``settings.json`` unless it exists (a hard link creates it atomically: the first writer wins).

        A process that starts at the same time with other settings is then refused by the check that follows.
        """
        record = {"settings": self.settings, "digest": self.settings_digest, "monai": monai.__version__}
        tmp = staging_path(path)
        tmp.write_text(json.dumps(record, indent=4) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()

    # ------------------------------------------------------------------------------------------------ keys
    def _key(self, item: Mapping[str, Any]) -> _StudyKey:
        entry = item[self.image_key]
        image = [os.path.abspath(p) for p in entry] if isinstance(entry, (list, tuple)) else os.path.abspath(entry)
        identity: dict[str, Any] = {"image": image}
        sources = list(image) if isinstance(image, list) else [image]
        if PET_KEY in item:
            pet = item[PET_KEY]
            identity[PET_KEY] = None if pet is None else os.path.abspath(pet)
            sources += [] if pet is None else [identity[PET_KEY]]
        elif isinstance(image, str):  # one CT path: its PET partner, found by name, is a source too
            partner = next((str(p) for p in pet_partner_candidates(image) if p.is_file()), None)
            sources += [partner] if partner else []
        label = item.get(self.label_key) if self.label_key else None
        name = str(item.get("case") or _study_name(sources[0]))
        clean = safe_name(name)[:80]
        token = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
        label_source = os.path.abspath(label) if _is_path(label) else None
        return _StudyKey(f"{clean}-{token}", f"{name} ({sources[0]})", tuple(sources), label_source)

    # ------------------------------------------------------------------------------------------ reading
    def _current(self, key: _StudyKey, check_files: bool) -> StoredStudy | None:
        """The entry of ``key`` if complete and up to date; ``None`` if absent or stale; raises if damaged."""
        folder = self.cache_dir / key.entry_id
        if not folder.is_dir():
            return None
        entry_file = folder / ENTRY_FILE
        try:
            entry = json.loads(entry_file.read_text())
        except FileNotFoundError:
            raise InputDataError(
                folder, f"entry of study {key.name} is incomplete (no {ENTRY_FILE}); delete the folder to rebuild it"
            ) from None
        except ValueError as error:
            raise InputDataError(
                entry_file, f"entry of study {key.name} is damaged ({error}); delete {folder} to rebuild it"
            ) from error
        if entry.get("format") != CACHE_FORMAT or entry.get("settings") != self.settings_digest:
            raise InputDataError(
                entry_file,
                f"entry of study {key.name} was built with other settings than {self.cache_dir / SETTINGS_FILE}"
                f" records; delete {folder} to rebuild it",
            )
        stale = self._stale_reason(entry, key)
        if stale:
            logger.info(f"preprocessed cache: study {key.name}: {stale}; rebuilding it")
            return None
        study = self._study(key, folder, entry)
        if check_files:
            study.image.check()
            if study.label is not None:
                study.label.check()
        return study

    @staticmethod
    def _stale_reason(entry: Mapping[str, Any], key: _StudyKey) -> str | None:
        stored = [record["path"] for record in entry["sources"]["image"]]
        if stored != list(key.image_sources):
            return "its source files differ"
        for record in entry["sources"]["image"]:
            if _file_record(record["path"]) != record:
                return f"{record['path']} changed since it was stored"
        if key.label_source is not None:
            label = entry["sources"]["label"]
            if label is None:
                return "a label is needed and the entry has none"
            if label["path"] != key.label_source or _file_record(label["path"]) != label:
                return f"its label {key.label_source} changed since it was stored"
        return None

    def _study(self, key: _StudyKey, folder: Path, entry: Mapping[str, Any]) -> StoredStudy:
        def volume(record: Mapping[str, Any], meta: Mapping[str, Any]) -> StoredVolume:
            return StoredVolume(
                study=key.name,
                folder=folder,
                channels=tuple(StoredChannel(**channel) for channel in record["channels"]),
                spatial_shape=tuple(entry["spatial_shape"]),
                dtype=record["dtype"],
                affine=tuple(tuple(row) for row in entry["affine"]),
                meta=meta,
            )

        label = entry["label"]
        return StoredStudy(
            entry_id=key.entry_id,
            folder=folder,
            image=volume(entry["image"], entry["meta"]),
            label=None if label is None else volume(label, {"filename_or_obj": entry["sources"]["label"]["path"]}),
            arrays=tuple(entry["arrays"]),
        )

    # ------------------------------------------------------------------------------------------ building
    @contextmanager
    def _locked(self, entry_id: str, wait: bool) -> Iterator[bool]:
        lock_file = self.cache_dir / LOCK_DIR / f"{entry_id}.lock"
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_file, "a+b") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _build(self, key: _StudyKey, item: Mapping[str, Any]) -> None:
        """Run the chain on ``item`` and store the result as the entry of ``key`` (caller holds the lock)."""
        started = time.perf_counter()
        sources = {"image": [_file_record(p) for p in key.image_sources], "label": None}
        if key.label_source is not None:
            sources["label"] = _file_record(key.label_source)
        data = apply_transform(self.preprocessing, dict(item))
        if self.class_locations is not None and data.get(self.label_key) is not None:
            with_locations = apply_transform(self.class_locations, data)
            location_keys = set(with_locations) - set(data)
            data = with_locations
        else:
            location_keys = set()
        if any(record is None for record in sources["image"]):  # read fine, then vanished: do not record
            raise InputDataError(key.image_sources[0], "a source file disappeared while it was being stored")

        work = self.cache_dir / BUILD_DIR / key.entry_id
        shutil.rmtree(work, ignore_errors=True)  # a killed builder's leftovers (we hold the lock)
        tmp = work / f"{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir(parents=True)
        image = data[self.image_key]
        entry: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "settings": self.settings_digest,
            "study": key.name,
            "sources": sources,
            "spatial_shape": [int(s) for s in image.shape[1:]],
            "affine": np.asarray(image.affine, dtype=np.float64).tolist(),
            "meta": {k: str(image.meta[k]) for k in _KEPT_META if k in getattr(image, "meta", {})},
            "image": self._store_channels(tmp, self.image_key, convert_to_numpy(image), np.dtype(np.float32)),
            "label": None,
            "arrays": [],
        }
        label = data.get(self.label_key) if self.label_key else None
        if label is not None and key.label_source is not None:
            array = convert_to_numpy(label)
            entry["label"] = self._store_channels(tmp, self.label_key, array, _label_dtype(array))
        for name, value in data.items():
            if name in item or name in (self.image_key, self.label_key):
                continue
            if isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim <= 1:
                if name in location_keys and entry["label"] is None:
                    continue
                _save_npy(tmp / f"{name}.npy", convert_to_numpy(value))
                record = {"key": name, "file": f"{name}.npy", "tensor": isinstance(value, torch.Tensor)}
                entry["arrays"].append({**record, "with_label": name in location_keys})
        entry["built_by"] = {"host": socket.gethostname(), "pid": os.getpid(), "monai": monai.__version__}
        entry["build_seconds"] = round(time.perf_counter() - started, 3)
        with open(tmp / ENTRY_FILE, "w") as handle:  # the completeness marker, written last
            handle.write(json.dumps(entry, indent=1))
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_folder(tmp)
        self._move_into_place(tmp, self.cache_dir / key.entry_id)
        shutil.rmtree(work, ignore_errors=True)

    @staticmethod
    def _store_channels(folder: Path, key: str, array: np.ndarray, dtype: np.dtype) -> dict[str, Any]:
        channels = []
        for index, channel in enumerate(array):
            first = channel.flat[0] if channel.size else 0.0
            if channel.size and bool((channel == first).all()):
                channels.append({"constant": float(first)})
            else:
                name = f"{key}_{index}.npy"
                _save_npy(folder / name, np.asfortranarray(channel.astype(dtype, copy=False)))
                channels.append({"file": name})
        return {"channels": channels, "dtype": "float32", "stored_dtype": str(dtype)}

    def _move_into_place(self, tmp: Path, final: Path) -> None:
        if final.exists():  # a stale entry: swap it out, then remove it
            old = tmp.parent / f"stale-{tmp.name}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_folder(self.cache_dir)

    # ------------------------------------------------------------------------------------------- public
    def study(
        self, item: Mapping[str, Any], build: bool = True, wait: bool = True, check_files: bool = False
    ) -> StoredStudy | None:
        """The stored entry of a datalist ``item``, built first if absent or stale.

        Args:
            item: a datalist item (``{"image": ..., "label": ...}``, paths absolute or relative to the cwd).
            build: build a missing entry; if ``False``, return ``None`` for it.
            wait: wait for another process building the entry; if ``False``, return ``None`` while it does.
            check_files: open every stored array once (shape and size), as a full validation.

        Raises:
            InputDataError: the entry is damaged (names the study and the file), or a source file is bad.
        """
        return self._ensure(item, build, wait, check_files)[0]

    def _ensure(
        self, item: Mapping[str, Any], build: bool, wait: bool, check_files: bool
    ) -> tuple[StoredStudy | None, str]:
        """:meth:`study`, and what happened: ``"found"``, ``"built"`` (here), ``"busy"`` or ``"missing"``."""
        key = self._key(item)
        found = self._current(key, check_files)
        if found is not None:
            return found, "found"
        if not build:
            return None, "missing"
        with self._locked(key.entry_id, wait) as acquired:
            if not acquired:
                return None, "busy"
            found = self._current(key, check_files=True)
            if found is not None:
                return found, "found"  # another process built it while this one waited
            self._build(key, item)
        return self._current(key, check_files=True), "built"

    def sample(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """What the dataset yields for ``item``: its other keys, the lazy image (and label), the stored arrays."""
        study = self.study(item)
        assert study is not None  # building waits, so an entry is there
        with_label = self.label_key is not None and item.get(self.label_key) is not None
        sample = {k: v for k, v in item.items() if k not in (self.image_key, self.label_key, PET_KEY)}
        sample[self.image_key] = study.image
        if with_label:
            sample[self.label_key] = study.label
        sample.update(study.load_arrays(with_label))
        return sample

    def build_missing(self, items: Sequence[Mapping[str, Any]], workers: int = 0) -> int:
        """Check every item's entry and build those absent or stale, with ``workers`` processes.

        Entries another process is building are skipped first and waited for at the end, so several DDP ranks
        or jobs share the work. Every existing entry's files are opened once (a damaged one raises here).

        Returns:
            How many entries this call built (the others were there, or another process built them).
        """
        pending = [item for item in items if self.study(item, build=False, check_files=True) is None]
        if not pending:
            return 0
        logger.info(
            f"preprocessed cache {self.cache_dir}: storing {len(pending)} of {len(items)} studies "
            f"({workers or 'no'} worker processes); later runs read them from there"
        )
        started = time.perf_counter()
        first = self._build_each(pending, workers, wait=False)
        busy = [item for item, status in zip(pending, first, strict=True) if status == "busy"]
        second = self._build_each(busy, workers, wait=True)
        built = (first + second).count("built")
        logger.info(f"preprocessed cache: {built} studies stored in {time.perf_counter() - started:.0f} s")
        return built

    def _build_each(self, items: list[Mapping[str, Any]], workers: int, wait: bool) -> list[str]:
        """Ensure each item's entry (in ``workers`` processes if > 0); what happened to each, in order."""
        jobs = _BuildJobs(self, items, wait)
        if workers > 0 and len(items) > 1:
            loader = torch.utils.data.DataLoader(jobs, batch_size=None, num_workers=min(workers, len(items)))
            results = dict(loader)
        else:
            results = dict(jobs[index] for index in range(len(jobs)))
        return [results[index] for index in range(len(items))]


class _BuildJobs(torch.utils.data.Dataset):
    """Item ``i`` ensures entry ``i`` and returns ``(i, status)``; a DataLoader runs them in worker processes."""

    def __init__(self, cache: PreprocessedCache, items: list[Mapping[str, Any]], wait: bool) -> None:
        self.cache, self.items, self.wait = cache, items, wait

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[int, str]:
        return index, self.cache._ensure(self.items[index], build=True, wait=self.wait, check_files=False)[1]
