# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Write files and folders under a temporary name and rename them into place only once complete.

A crash or an error half-way therefore never leaves a truncated file, and never damages a file that
was already there.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from scripts.errors import InputDataError

_STAGING_NAME = re.compile(r"^\.(?P<kind>tmp|old)-(?P<pid>\d+)-(?P<name>.+)$")


def staging_path(final: Path, kind: str = "tmp", pid: int | None = None) -> Path:
    """The hidden sibling ``.<kind>-<pid>-<name>`` under which :func:`atomic_path` builds or retires ``final``."""
    return final.with_name(f".{kind}-{os.getpid() if pid is None else pid}-{final.name}")


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (one of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_staging(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Staging entries in ``folder`` left by processes that no longer run (killed mid-write), ``.old-`` ones first.

    Args:
        folder: where to look.
        name: only those staging this final name (e.g. the dataset folder's name); None for any.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        match = _STAGING_NAME.match(entry.name)
        if match and (name is None or match["name"] == name) and not process_alive(int(match["pid"])):
            found.append(entry)
    return sorted(found, key=lambda entry: (not entry.name.startswith(".old-"), entry.name))


def remove_stale_staging(
    folder: str | os.PathLike, name: str | None = None, log: Callable[[str], None] | None = None
) -> list[Path]:
    """Clean up after interrupted :func:`atomic_path` writes in ``folder``, logging each step; returns what was seen.

    A staging entry is removed; except that a run killed between its two final renames (``.old-`` present, the
    final name absent) is completed: its finished ``.tmp-`` entry takes the final name, or else the ``.old-`` entry
    gets it back. So an earlier dataset or file is never lost.
    """
    folder, found = Path(folder), stale_staging(folder, name)
    for entry in found:
        if not entry.exists() and not entry.is_symlink():
            continue  # already moved into place below
        match = _STAGING_NAME.match(entry.name)
        final = folder / match["name"]
        if match["kind"] == "old" and not final.exists():
            finished = staging_path(final, "tmp", int(match["pid"]))
            source = finished if finished.exists() else entry
            os.replace(source, final)
            if log is not None:
                log(f"moved {source} to {final}: the run that wrote it was interrupted while renaming it into place")
            if source == finished:
                _remove(entry)
            continue
        size = _size(entry)
        _remove(entry)
        if log is not None:
            log(f"removed {entry} ({size / 1e6:.1f} MB), left by an interrupted run (its process no longer runs)")
    return found


def check_writable_folder(folder: str | os.PathLike, what: str = "the output folder") -> Path:
    """Raise unless ``folder`` is a writable folder or can be created (its nearest existing parent is one).

    Creates nothing that stays: the probe file it writes is removed at once.

    Raises:
        InputDataError: naming the folder and the problem (a file in the way, no write permission).
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == folder else f"cannot be created: {existing} is a file"
        raise InputDataError(folder, f"{what} {where}")
    probe = staging_path(existing / "write-test")
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise InputDataError(folder, f"{what} cannot be written ({error.strerror or error})") from error
    return folder


def _size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return path.lstat().st_size


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success it is renamed to ``path``, on error removed.

    The temporary name keeps the final suffix (``.tmp-<pid>-name.nii.gz``) so writers that pick the
    format from the extension, such as nibabel, still work. Works for files and for folders.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging_path(final, "tmp")
    _remove(tmp)
    try:
        yield tmp
        if final.is_dir() and tmp.is_dir():
            old = staging_path(final, "old")
            os.replace(final, old)
            os.replace(tmp, final)
            _remove(old)
        else:
            os.replace(tmp, final)
    finally:
        _remove(tmp)


def save_nifti(
    array: np.ndarray, affine: np.ndarray, path: str | os.PathLike, dtype: Any = None, header: Any = None
) -> Path:
    """Save ``array`` with ``affine`` as NIfTI at ``path`` atomically; ``dtype`` sets the on-disk type."""
    data = np.asarray(array if dtype is None else np.asarray(array).astype(dtype, copy=False))
    image = nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64), header=header)
    image.set_data_dtype(data.dtype)
    image.set_qform(image.affine, code=1)
    image.set_sform(image.affine, code=1)
    with atomic_path(path) as tmp:
        nib.save(image, str(tmp))
    return Path(path)


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return write_text(json.dumps(obj, indent=4) + "\n", path)


def write_csv(
    rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, fieldnames: Sequence[str] | None = None
) -> Path:
    """Write a list of dicts as CSV (header from ``fieldnames`` or the first row) to ``path`` atomically."""
    names = list(fieldnames if fieldnames is not None else (rows[0].keys() if rows else []))
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=names)
            writer.writeheader()
            writer.writerows(rows)
    return Path(path)
