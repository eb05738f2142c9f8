# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The one exception type for bad input data: it always names the file and the problem."""

from __future__ import annotations

import functools
import logging
import os
import sys


class InputDataError(ValueError):
    """A study file that cannot be used, with the file's path and what is wrong with it."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple:
        """Pickle as ``(path, problem)`` so the error crosses process boundaries (``--workers``)."""
        return (type(self), (self.path, self.problem))


# HTTP status a web server answers for an unusable study (the request was understood; its data cannot be used).
CLIENT_ERROR_STATUS = 422


def for_web_client(error: InputDataError) -> InputDataError:
    """``error``, made to reach the client when it is raised inside a Starlette/FastAPI server (MONAI Label).

    Such a server answers any other exception with a bare "500 Internal Server Error" and logs the traceback.
    When ``starlette.exceptions`` is loaded in this process, the returned error is also Starlette's
    ``HTTPException``, which the server answers with status 422 and ``{"detail": "<file>: <problem>"}``, and the
    message is logged as an error (the server does not log handled HTTP errors itself). Without a web server it is
    ``error`` itself, so the bundle never imports one.
    """
    starlette = sys.modules.get("starlette.exceptions")
    if starlette is None:
        return error
    logging.getLogger(__name__).error("unusable study: %s", error)
    web_error = _web_error_class(starlette.HTTPException)(error.path, error.problem)
    web_error.status_code, web_error.detail, web_error.headers = CLIENT_ERROR_STATUS, str(error), None
    return web_error


@functools.cache
def _web_error_class(http_exception: type) -> type:
    class InputDataWebError(InputDataError, http_exception):
        """An :class:`InputDataError` that a Starlette server answers with ``status_code`` and ``detail``."""

        def __str__(self) -> str:
            return f"{self.path}: {self.problem}"

        def __reduce__(self) -> tuple:
            return (InputDataError, (self.path, self.problem))  # pickles as the plain error

    return InputDataWebError
