# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The one exception type for bad input data: it always names the file and the problem."""

from __future__ import annotations

import os


class InputDataError(ValueError):
    """A study file that cannot be used, with the file's path and what is wrong with it.

    ``args`` is ``(path, problem)``, so the error pickles as it is and crosses process boundaries (``--workers``).
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        super().__init__(str(path), problem)
        self.path = str(path)
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"
