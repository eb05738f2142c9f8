# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""A preprocessed volume on disk: one memory-mapped ``.npy`` per channel (or a constant), read box by box.

Reading a box opens each channel with ``numpy.load(mmap_mode="r")`` and copies out only that box, so only the
pages under the box are read from disk. Nothing stays open between reads: a worker that samples thousands of
studies holds no file descriptors, and the object pickles as a few paths and numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from scripts.errors import InputDataError


@dataclass(frozen=True)
class StoredChannel:
    """One channel: a ``.npy`` file in the entry folder, or a constant value (a channel with a single value)."""

    file: str | None = None
    constant: float | None = None

    def __post_init__(self) -> None:
        if (self.file is None) == (self.constant is None):
            raise ValueError("a stored channel is either a file or a constant")


@dataclass(frozen=True)
class StoredVolume:
    """A channel-first [C, X, Y, Z] volume of one study, as the preprocessing left it, read lazily.

    Args:
        study: the study's name in error messages (case id and source file).
        folder: the entry folder holding the channel files.
        channels: one :class:`StoredChannel` per channel.
        spatial_shape: (X, Y, Z).
        dtype: the array type the channels are returned in (``float32`` images, labels too).
        affine: 4 x 4 voxel-to-world matrix of the stored grid.
        meta: meta data given to the ``MetaTensor`` of a read (``filename_or_obj``, ...).
    """

    study: str
    folder: Path
    channels: tuple[StoredChannel, ...]
    spatial_shape: tuple[int, int, int]
    dtype: str
    affine: tuple[tuple[float, ...], ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """(C, X, Y, Z), like a channel-first tensor's."""
        return (len(self.channels), *self.spatial_shape)

    def damaged(self, path: Path, problem: str) -> InputDataError:
        """The error for a damaged channel file: names the study and how to rebuild it."""
        return InputDataError(
            path, f"stored data of study {self.study} is damaged ({problem}); delete {self.folder} to rebuild it"
        )

    def open_channel(self, channel: StoredChannel) -> np.ndarray:
        """Memory-map a channel file, checking that it holds the recorded shape (a truncated file does not)."""
        path = self.folder / str(channel.file)
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise self.damaged(path, "file missing") from None
        except (ValueError, OSError) as error:  # truncated data, a broken header
            raise self.damaged(path, f"{type(error).__name__}: {error}") from error
        if tuple(array.shape) != tuple(self.spatial_shape):
            raise self.damaged(path, f"shape {tuple(array.shape)}, expected {tuple(self.spatial_shape)}")
        return array

    def check(self) -> None:
        """Open every channel file once (shape and size checks), raising :class:`InputDataError` if one is bad."""
        for channel in self.channels:
            if channel.file is not None:
                self.open_channel(channel)

    def read(self, box: Sequence[slice] | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """The [C, *box] array of a spatial ``box`` (slices with step 1, clipped to the volume); all if ``None``.

        ``out``, if given, receives it (shape [C, *clipped box], e.g. the inside of a padded patch): no new array.
        """
        box = tuple(slice(None) for _ in self.spatial_shape) if box is None else tuple(box)
        clipped = tuple(slice(*s.indices(n)[:2]) for s, n in zip(box, self.spatial_shape, strict=True))
        extent = tuple(max(s.stop - s.start, 0) for s in clipped)
        if out is None:
            out = np.empty((len(self.channels), *extent), dtype=self.dtype)
        elif tuple(out.shape) != (len(self.channels), *extent):
            raise ValueError(f"out has shape {tuple(out.shape)}, the box needs {(len(self.channels), *extent)}")
        for index, channel in enumerate(self.channels):
            if channel.file is None:
                out[index] = channel.constant
            else:
                out[index] = self.open_channel(channel)[clipped]
        return out

    def box_affine(self, start: Sequence[int]) -> np.ndarray:
        """Affine of an array whose voxel 0 lies at stored voxel ``start`` (which may be negative: padding)."""
        shift = np.eye(4)
        shift[:3, 3] = np.asarray(start, dtype=np.float64)
        return np.asarray(self.affine, dtype=np.float64) @ shift

    def to_metatensor(self, array: np.ndarray | None = None, start: Sequence[int] = (0, 0, 0)) -> MetaTensor:
        """``array`` (default: the whole volume) as a ``MetaTensor`` with its affine and the stored meta."""
        data = self.read() if array is None else array
        return MetaTensor(
            torch.from_numpy(np.ascontiguousarray(data)),
            affine=torch.as_tensor(self.box_affine(start), dtype=torch.float64),
            meta=dict(self.meta),
        )
