# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The one exception type for bad input data: it always names the file and the problem."""

from __future__ import annotations

import os


class InputDataError(ValueError):
    """A study file that cannot be used, with the file's path and what is wrong with it."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple:
        """Pickle as ``(path, problem)`` so the error crosses process boundaries (``--workers``)."""
        return (type(self), (self.path, self.problem))
