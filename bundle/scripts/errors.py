# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The exception type for bad input data, and how it ends a command: one line ``error: <file>: <problem>``.

``InputDataError`` always names the file and the problem. MONAI, ignite and PyTorch wrap it on its way up
(``Failed to instantiate component``, ``Failed to evaluate ConfigExpression``, ``applying transform``, an error
re-raised from a ``DataLoader`` worker), so importing :mod:`scripts` (every bundle config does, through its
``scripts.*`` targets) installs :func:`install_error_reporting`:

- an uncaught exception whose chain holds an ``InputDataError`` ends the process with its one line on stderr
  (exit status 1) instead of a traceback; any other exception keeps Python's usual traceback. This acts only
  at the top level of a process (``sys.excepthook``), so a server that catches its errors (MONAI Label) is not
  affected. Under ``torchrun`` the line also goes to the rank's error file, so the launcher's report shows it;
- in ``python -m monai.bundle`` runs, log records of such an exception (ignite and MONAI log it before it
  propagates) carry the line instead of the traceback.

Set the environment variable ``PETCT_DEBUG=1`` to get the full tracebacks back.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

# Environment variable: set to 1 (or true/yes) to see full tracebacks instead of the one-line errors.
DEBUG_ENV = "PETCT_DEBUG"

# How an InputDataError reads in the text of an exception re-raised from a DataLoader worker process.
_REPORTED_IN_TEXT = re.compile(r"^(?:[\w.]+\.)?InputDataError: (.+)$", re.MULTILINE)


class InputDataError(ValueError):
    """A study file that cannot be used, with the file's path and what is wrong with it.

    ``args`` is ``(path, problem)``, so the error pickles as it is and crosses process boundaries (``--workers``).
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        super().__init__(str(path), problem)
        self.path = str(path)
        self.problem = " ".join(str(problem).split())  # one line, whatever a library put in it

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"

    def lines(self) -> list[str]:
        """The ``error: <file>: <problem>`` line(s) a command ends with."""
        return [f"error: {self}"]


class BatchInputError(InputDataError):
    """Several studies that cannot be used (a batch reports all of them at the end): one line each."""

    # Its own arguments differ from the base class's; __reduce__ below pickles it from them.
    def __init__(self, errors: Sequence[InputDataError]) -> None:  # noqa: B042
        if not errors:
            raise ValueError("BatchInputError needs at least one error")
        self.errors = list(errors)
        more = f" (and {len(self.errors) - 1} more studies that cannot be used)" if len(self.errors) > 1 else ""
        super().__init__(self.errors[0].path, self.errors[0].problem + more)

    def __reduce__(self) -> tuple:
        return (type(self), (self.errors,))

    def lines(self) -> list[str]:
        """One ``error: <file>: <problem>`` line per study."""
        return [line for error in self.errors for line in error.lines()]


def debug_enabled() -> bool:
    """Whether ``PETCT_DEBUG`` asks for full tracebacks."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception it was raised from or during (``__cause__``, ``__context__``), once each."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def input_error_in(error: BaseException | None) -> InputDataError | None:
    """The :class:`InputDataError` behind ``error`` (itself, a cause or a context), or None if there is none.

    Looks through the exception chain, then through the text of each exception in it: a ``DataLoader`` worker
    re-raises its error in the main process as text, the original type lost.
    """
    if error is None:
        return None
    chain = list(_chain(error))
    for link in chain:
        if isinstance(link, InputDataError):
            return link
    for link in chain:
        found = _REPORTED_IN_TEXT.findall(str(link))
        if found:
            path, _, problem = found[0].partition(": ")
            return InputDataError(path, problem)
    return None


def error_lines(error: BaseException | None) -> list[str] | None:
    """The ``error: <file>: <problem>`` lines of the :class:`InputDataError` behind ``error``, or None."""
    found = input_error_in(error)
    return None if found is None else found.lines()


def _write_elastic_error_file(lines: Sequence[str]) -> None:
    """Under torchrun, leave the lines where the launcher's failure report reads a rank's message."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path or os.path.exists(path):
        return
    try:
        with open(path, "w") as handle:
            json.dump({"message": " / ".join(lines), "timestamp": int(time.time())}, handle)
    except OSError:
        pass


def silence_stdout() -> None:
    """Point stdout at the null device: the reader went away (``| head``), the rest of the output is dropped."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def say(text: str) -> None:
    """Print ``text`` on stdout at once; if the reader went away (``| head``), drop it and all later output quietly.

    The command carries on with its work: a closed pipe loses console lines, never results.
    """
    try:
        print(text, flush=True)
    except BrokenPipeError:
        silence_stdout()


def _excepthook(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None, previous: Any
) -> None:
    if not debug_enabled():
        if isinstance(error, BrokenPipeError):
            silence_stdout()  # the reader of our output is gone: end quietly
            return
        lines = error_lines(error)
        if lines is not None:
            for line in lines:
                print(line, file=sys.stderr)
            sys.stderr.flush()
            _write_elastic_error_file(lines)
            return
    previous(kind, error, traceback)


class _OneLineRecords:
    """A log-record factory that puts the one line in place of the traceback of an input error (bundle runs)."""

    def __init__(self, previous: Any) -> None:
        self.previous = previous

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.previous(*args, **kwargs)
        if debug_enabled() or record.levelno < logging.ERROR:
            return record
        error = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
        lines = error_lines(error)
        if lines is not None:
            try:
                message = record.getMessage()
            except Exception:  # a malformed record: keep only the line
                message = ""
            if not all(line.removeprefix("error: ") in message for line in lines):
                message = f"{message} -> {'; '.join(lines)}"
            record.msg, record.args = message, None
            record.exc_info, record.exc_text = None, None
        return record


def _running_monai_bundle() -> bool:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return getattr(spec, "name", "") == "monai.bundle.__main__"


def install_error_reporting() -> None:
    """Install the one-line reporting described in the module docstring (idempotent)."""
    previous = sys.excepthook
    if not getattr(previous, "_petct_one_line", False):

        def hook(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
            _excepthook(kind, error, traceback, previous)

        hook._petct_one_line = True  # type: ignore[attr-defined]
        sys.excepthook = hook
    factory = logging.getLogRecordFactory()
    if _running_monai_bundle() and not isinstance(factory, _OneLineRecords):
        logging.setLogRecordFactory(_OneLineRecords(factory))


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
