"""The worker process: imports units and runs their candidates, one request at a time.

It answers the parent (`pool`) over a `multiprocessing` connection: ``("discover", unit)``
imports the unit and lists its candidates; ``("run", index, defaults)`` checks one and sends
back a `CaseOutcome` as a dict. Anything a case raises becomes an ``error`` outcome with the
traceback. A hang or a crash is the parent's to notice: it kills or replaces this process.

The worker ignores Ctrl-C (the parent decides what an interrupt means and ends its workers)
and sends its stdout/stderr (framework logs, user prints) to a capture file, whose new part
is attached to the outcome of a case that errs, so the terminal shows only the audit.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..reporting import CaseOutcome
from .discover import Candidate, candidates, load
from .targets import Unit

HERE = Path(__file__).parent


def _redirect(capture: str) -> None:
    handle = os.open(capture, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    for fd in (1, 2):
        os.dup2(handle, fd)
    os.close(handle)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]


def _output_since(capture: str, offset: int) -> str:
    with open(capture, encoding="utf-8", errors="replace") as handle:
        handle.seek(offset)
        return handle.read()[-20000:]


def _traceback(error: BaseException) -> str:
    """The traceback from the user's code on: the audit's own frames above it say nothing."""
    summary = traceback.TracebackException.from_exception(error)
    frames = summary.stack
    while len(frames) > 1 and Path(frames[0].filename).parent == HERE:
        del frames[0]
    return "".join(summary.format())


def _run(candidate: Candidate, defaults: dict[str, Any], capture: str) -> CaseOutcome:
    offset = os.path.getsize(capture)
    name, file, line = candidate.name, candidate.file, candidate.line
    start = time.perf_counter()
    try:
        result = candidate.run(defaults)
    except (Exception, SystemExit) as error:
        sys.stdout.flush()
        sys.stderr.flush()
        output = _output_since(capture, offset)
        text = _traceback(error) + (f"\ncaptured output:\n{output}" if output else "")
        message = f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else ""
        duration = time.perf_counter() - start
        message = message or type(error).__name__
        return CaseOutcome(name, "error", duration, file, line, None, message, text)
    duration = time.perf_counter() - start
    if isinstance(result, str):
        return CaseOutcome(name, "skipped", duration, file, line, None, result)
    return CaseOutcome.from_report(name, result, duration, file, line)


def serve(conn: Connection, capture: str) -> None:
    """Answer the parent's requests until it closes the connection."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    _redirect(capture)
    found: list[Candidate] = []
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request[0] == "discover":
            unit: Unit = request[1]
            try:
                found = candidates(unit, load(unit))
            except (Exception, SystemExit) as error:
                message = f"{type(error).__name__}: {error}"
                conn.send(("import-error", message, traceback.format_exc()))
                continue
            conn.send(("ok", [(c.name, c.file, c.line) for c in found]))
        elif request[0] == "run":
            conn.send(("outcome", _run(found[request[1]], request[2], capture).to_dict()))
