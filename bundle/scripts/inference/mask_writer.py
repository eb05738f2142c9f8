# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""A NIfTI writer for ``SaveImaged`` that writes under a temporary name and renames into place when complete.

An inference run killed while writing a mask therefore leaves no truncated ``<study>.nii.gz`` under its final
name (only a hidden ``.tmp-<pid>-<study>.nii.gz``, which the next run removes); an earlier mask stays intact.
Config use: ``"writer": "scripts.inference.mask_writer.AtomicNibabelWriter"`` in each ``SaveImaged``.
"""

from __future__ import annotations

import logging
from typing import Any

from monai.config import PathLike
from monai.data import NibabelWriter
from scripts.atomic_io import atomic_path

logger = logging.getLogger(__name__)


class AtomicNibabelWriter(NibabelWriter):
    """MONAI's ``NibabelWriter``, writing each file atomically (:func:`scripts.atomic_io.atomic_path`)."""

    def write(self, filename: PathLike, verbose: bool = False, **obj_kwargs: Any) -> None:
        """Write the image to a temporary sibling of ``filename``, then rename it to ``filename``."""
        if verbose:
            logger.info("writing: %s", filename)
        with atomic_path(filename) as tmp:
            super().write(tmp, verbose=False, **obj_kwargs)
