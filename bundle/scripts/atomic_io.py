# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Write files and folders under a temporary name and rename them into place only once complete.

A crash or an error half-way therefore never leaves a truncated file, and never damages a file that
was already there.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np


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
    tmp = final.with_name(f".tmp-{os.getpid()}-{final.name}")
    _remove(tmp)
    try:
        yield tmp
        if final.is_dir() and tmp.is_dir():
            old = final.with_name(f".old-{os.getpid()}-{final.name}")
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
