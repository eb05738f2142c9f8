# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The resumable ``last_checkpoint_epoch=<n>.pt`` files of a run: which one to resume from, and pruning the rest.

MONAI's ``CheckpointSaver(n_saved=1)`` deletes only the files it wrote itself, so every resumed session leaves
the previous session's last checkpoint behind (about 0.5 GB each at the paper's settings).
:class:`PruneStaleCheckpoints`, attached after the saver, deletes all but the newest file, and
:func:`resume_checkpoint` (the configs' ``resume_from``) picks that same newest file: one ordering, newest
modification time, then highest epoch, defined once in :func:`last_checkpoints`.
"""

import os
import re
from pathlib import Path

from ignite.engine import Engine, Events

LAST_CHECKPOINT_PREFIX = "last"  # the CheckpointSaver file_prefix in the configs
LAST_CHECKPOINT_GLOB = "last_checkpoint_epoch=*.pt"
LAST_CHECKPOINT_PATTERN = re.compile(r"^last_checkpoint_epoch=(\d+)\.pt$")


def last_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """The ``last_checkpoint_epoch=<n>.pt`` files in ``directory``, oldest first (by time, then by epoch)."""
    found = []
    for path in Path(directory).glob(LAST_CHECKPOINT_GLOB):
        match = LAST_CHECKPOINT_PATTERN.match(path.name)
        if match:
            found.append((path.stat().st_mtime, int(match.group(1)), path))
    return [path for *_, path in sorted(found)]


def stale_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """The ``last_checkpoint_epoch=<n>.pt`` files in ``directory`` but the newest (by time, then by epoch)."""
    return last_checkpoints(directory)[:-1]


def resume_checkpoint(directory: str | os.PathLike, resume: bool = True) -> str:
    """The file a resumed run loads: the newest last checkpoint in ``directory``; ``""`` if none or ``resume`` off."""
    found = last_checkpoints(directory) if resume else []
    return str(found[-1]) if found else ""


class PruneStaleCheckpoints:
    """After each epoch, delete the last checkpoints of earlier epochs in ``directory``.

    Attach it after the ``CheckpointSaver`` that writes the last checkpoint, so the new file exists first.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def attach(self, engine: Engine) -> None:
        """Run after every epoch of ``engine``."""
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine | None = None) -> None:
        """Delete the stale files."""
        for path in stale_checkpoints(self.directory):
            path.unlink(missing_ok=True)
