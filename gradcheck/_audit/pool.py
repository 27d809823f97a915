"""The parent side of an audit: units run in reusable worker processes, in parallel threads.

Note: Isolation and reuse
    Importing TensorFlow, PyTorch or JAX takes seconds, so a worker process is reused: each
    thread of a `concurrent.futures.ThreadPoolExecutor` (``--jobs`` threads) owns one worker
    and sends it one unit after another, and the worker imports each framework once. The
    thread asks for one case at a time and waits at most ``timeout`` seconds: a case that
    hangs is an ``error`` and its worker is killed; a worker that dies (``os._exit``, a
    segfault) makes the case it was running an ``error``, with its exit status and last
    output. Either way a fresh worker imports the unit again and the audit goes on with the
    next case. Workers start with the ``spawn`` method: forking a process that runs threads
    (and perhaps a framework's thread pools) is unsafe.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ..reporting import CaseOutcome
from .targets import Unit
from .worker import serve

IMPORT_TIMEOUT = 120.0  # seconds an import may take at least, whatever --timeout says


class _HungError(Exception):
    """The worker did not answer in time."""


class _DiedError(Exception):
    """The worker process ended while it had a request."""


@dataclass(frozen=True)
class Options:
    """How to audit.

    Attributes:
        defaults: options for every `check` (``mode``, ``seed``), under the case's own.
        timeout: seconds one case may take before it is an error.
        jobs: worker processes running units in parallel.
        select, ignore: shell patterns on case names; a case runs if it matches some
            `select` pattern (all do when there is none) and no `ignore` pattern.
    """

    defaults: dict[str, Any]
    timeout: float = 300.0
    jobs: int = 1
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def selected(self, name: str) -> bool:
        """Whether the case of this name runs (`select`, then `ignore`)."""
        chosen = not self.select or any(fnmatchcase(name, p) for p in self.select)
        return chosen and not any(fnmatchcase(name, p) for p in self.ignore)


class _Worker:
    """One worker process, its connection and its capture file."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        fd, self.capture = tempfile.mkstemp(prefix="gradcheck-worker-", suffix=".log")
        os.close(fd)
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, self.capture), daemon=False)
        self.process.start()
        child.close()

    def request(self, message: tuple[Any, ...], timeout: float) -> Any:
        self.conn.send(message)
        if not self.conn.poll(timeout):
            raise _HungError
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            raise _DiedError from None

    def output_since(self, offset: int) -> str:
        with open(self.capture, encoding="utf-8", errors="replace") as handle:
            handle.seek(offset)
            return handle.read()[-4000:]

    def size(self) -> int:
        return os.path.getsize(self.capture)

    def status(self) -> str:
        self.process.join(timeout=5)
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def kill(self) -> None:
        """Stop the process now (a thread waiting on it sees its connection end)."""
        if self.process.is_alive():
            self.process.kill()

    def close(self) -> None:
        """Stop the process and remove its capture file."""
        self.kill()
        self.process.join(timeout=10)
        self.conn.close()
        Path(self.capture).unlink(missing_ok=True)


class _StoppedError(Exception):
    """The audit is being interrupted: no new worker, no new outcome."""


class _UnimportableError(Exception):
    def __init__(self, outcome: CaseOutcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


class Audit:
    """One audit: units in, outcomes out (through `on_outcome` as they come, and `run`).

    `on_outcome` is called with each outcome and `on_unit` with each unit once it is done,
    from the worker threads (one call at a time per thread: the callee locks if it shares).

    Attributes:
        interrupted: True when Ctrl-C stopped the run; the outcomes are those that finished.
        unimportable: labels of the units that could not be imported.
    """

    def __init__(
        self,
        options: Options,
        on_outcome: Callable[[CaseOutcome], None],
        on_unit: Callable[[Unit], None] = lambda unit: None,
    ) -> None:
        self.options = options
        self.on_outcome = on_outcome
        self.on_unit = on_unit
        self.interrupted = False
        self.unimportable: list[str] = []
        self._stopping = threading.Event()
        self._local = threading.local()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()

    def run(self, units: Sequence[Unit]) -> list[CaseOutcome]:
        """Audit every unit; Ctrl-C stops the workers and returns the outcomes that finished.

        Outcomes come in unit order, then declaration order, whatever ``jobs`` is.
        """
        results: list[list[CaseOutcome]] = [[] for _ in units]
        executor = ThreadPoolExecutor(max(1, self.options.jobs), thread_name_prefix="gradcheck")
        futures = [executor.submit(self._unit, u, results[i]) for i, u in enumerate(units)]
        try:
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            self.interrupted = True
            with self._lock:
                self._stopping.set()
                for worker in self._workers:
                    worker.kill()  # their threads see the connection end and return
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
            for worker in self._workers:
                worker.close()
        return [o for outcomes in results for o in outcomes]

    def _worker(self, fresh: bool = False) -> _Worker:
        worker: _Worker | None = getattr(self._local, "worker", None)
        if worker is not None and not fresh:
            return worker
        if worker is not None:
            worker.kill()
        with self._lock:
            if self._stopping.is_set():
                raise _StoppedError
            worker = _Worker()
            self._workers.append(worker)
        self._local.worker = worker
        return worker

    def _record(self, outcome: CaseOutcome, into: list[CaseOutcome]) -> None:
        if not self._stopping.is_set():
            into.append(outcome)
            self.on_outcome(outcome)

    def _unit(self, unit: Unit, into: list[CaseOutcome]) -> None:
        try:
            specs = self._discover(unit, fresh=False)
            for index, (name, file, line) in enumerate(specs):
                if self.options.selected(name):
                    outcome, broken = self._case(index, name, file, line)
                    self._record(outcome, into)
                    if broken:  # the next cases need the unit in a fresh worker
                        self._discover(unit, fresh=True)
        except _UnimportableError as failed:
            self._record(failed.outcome, into)
        except _StoppedError:
            return
        self.on_unit(unit)

    def _discover(self, unit: Unit, fresh: bool) -> list[tuple[str, str | None, int | None]]:
        """Import the unit in this thread's worker and list its candidates.

        Raises:
            _UnimportableError: with the error outcome of the unit.
            _StoppedError: the audit is being interrupted.
        """
        worker = self._worker(fresh)
        allowed = max(self.options.timeout, IMPORT_TIMEOUT)
        start = time.perf_counter()
        try:
            answer = worker.request(("discover", unit), allowed)
        except _HungError:
            reason, text = f"importing took over {allowed:g} s", worker.output_since(0)
        except _DiedError:
            self._stop_if_stopping()
            reason = f"the worker died while importing ({worker.status()})"
            text = worker.output_since(0)
        else:
            if answer[0] == "ok":
                return list(answer[1])
            reason, text = f"cannot import: {answer[1]}", answer[2]
        self._worker(fresh=True)
        self.unimportable.append(unit.label)
        duration = time.perf_counter() - start
        raise _UnimportableError(
            CaseOutcome(
                unit.label,
                "error",
                duration,
                unit.label if unit.path else None,
                None,
                None,
                reason,
                text,
            )
        )

    def _stop_if_stopping(self) -> None:
        if self._stopping.is_set():
            raise _StoppedError

    def _case(
        self, index: int, name: str, file: str | None, line: int | None
    ) -> tuple[CaseOutcome, bool]:
        """Run one case: its outcome, and True when it hung or crashed its worker."""
        self._stop_if_stopping()
        worker = self._worker()
        offset, start = worker.size(), time.perf_counter()
        timeout = self.options.timeout
        try:
            answer = worker.request(("run", index, self.options.defaults), timeout)
            return CaseOutcome.from_dict(answer[1]), False
        except _HungError:
            reason = f"timed out after {timeout:g} s (its worker was stopped)"
        except _DiedError:
            self._stop_if_stopping()
            reason = f"its worker process died ({worker.status()})"
        text = worker.output_since(offset)
        duration = time.perf_counter() - start
        return CaseOutcome(name, "error", duration, file, line, None, reason, text), True
