"""The plain records every report writer reads: one `CaseOutcome` per case, one `Run` per audit.

They hold only JSON-ready data (strings, numbers, lists, dicts) so that pytest-xdist workers, CI
shards and `gradcheck report` can pass them around as JSON and merge them without importing any
framework or the objects that were checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import Report

VERDICTS = ("pass", "fail", "nondifferentiable", "nonfinite", "nondeterministic", "inconclusive")
STATUSES = (*VERDICTS, "error", "skipped")
# Statuses that are not findings: everything else makes an audit exit 1.
CLEAN = frozenset({"pass", "skipped"})
# Characters XML 1.0 cannot hold, which HTML and Markdown viewers show as garbage (terminal
# colour codes in a traceback, say).
_UNPRINTABLE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def printable(text: str) -> str:
    """`text` with control characters (other than tab and newlines) replaced by U+FFFD."""
    return _UNPRINTABLE.sub("\ufffd", text)


@dataclass(frozen=True)
class CaseOutcome:
    """What happened to one case: its status, how long it took and the evidence.

    Attributes:
        name: unique within a run, e.g. ``examples/losses.py::softplus[x=float64(3,)]``.
        status: a verdict (``"pass"``, ``"fail"``, ``"nondifferentiable"``, ``"nonfinite"``,
            ``"nondeterministic"``, ``"inconclusive"``), ``"error"`` (the case raised, hung or
            crashed) or ``"skipped"`` (it could not be checked; `message` says why).
        duration: wall time in seconds.
        file, line: where the case is declared, for annotations; None when unknown.
        report: ``Report.to_dict()`` when a check ran.
        message: one line: the summary, the skip reason or the exception.
        text: the readable body: the report's text or a traceback.
    """

    name: str
    status: str
    duration: float
    file: str | None = None
    line: int | None = None
    report: dict[str, Any] | None = None
    message: str = ""
    text: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; expected one of {STATUSES}")

    @property
    def finding(self) -> bool:
        """True when this outcome should fail an audit (anything but pass or skipped)."""
        return self.status not in CLEAN

    def to_dict(self) -> dict[str, Any]:
        """The outcome as JSON-ready data; `from_dict` reads it back."""
        return {
            "name": self.name,
            "status": self.status,
            "duration": self.duration,
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "text": self.text,
            "report": self.report,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseOutcome:
        """The outcome `to_dict` gave (a process boundary or a JSON file in between)."""
        return cls(
            name=str(data["name"]),
            status=str(data["status"]),
            duration=float(data["duration"]),
            file=None if data.get("file") is None else str(data["file"]),
            line=None if data.get("line") is None else int(data["line"]),
            report=None if data.get("report") is None else dict(data["report"]),
            message=str(data.get("message", "")),
            text=str(data.get("text", "")),
        )

    @classmethod
    def from_report(
        cls,
        name: str,
        report: Report,
        duration: float,
        file: str | None = None,
        line: int | None = None,
    ) -> CaseOutcome:
        """The outcome of a check that ran: its verdict, first message line and full text."""
        return cls(
            name=name,
            status=report.verdict,
            duration=duration,
            file=file,
            line=line,
            report=report.to_dict(),
            message=summary_line(report.to_dict()),
            text=str(report),
        )


def summary_line(report: Mapping[str, Any]) -> str:
    """One line for a report dict: the message of its most telling check."""
    checks = [c for c in report.get("checks", ()) if c.get("verdict") == report.get("verdict")]
    if not checks:
        return str(report.get("verdict", ""))
    first = checks[0]
    return f"{first['kind']}: {first['message']}"


@dataclass(frozen=True)
class Run:
    """One audit (or several merged): the outcomes in order, and facts about the run.

    Attributes:
        outcomes: one per case, in the order they were collected.
        partial: True when the run was interrupted; every writer says so.
        meta: facts for the reader: ``gradcheck`` (version), ``command``, ``mode``, ``seed``,
            ``started`` (ISO 8601, UTC), ``duration`` (seconds) ... Any JSON-ready values.
    """

    outcomes: tuple[CaseOutcome, ...]
    partial: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        """How many outcomes have each status, in `STATUSES` order, zeros left out."""
        found = [o.status for o in self.outcomes]
        return {s: found.count(s) for s in STATUSES if s in found}

    @property
    def findings(self) -> tuple[CaseOutcome, ...]:
        """The outcomes that fail the run, in order."""
        return tuple(o for o in self.outcomes if o.finding)

    @property
    def duration(self) -> float:
        """The run's wall time from `meta`, else the sum of the case durations."""
        value = self.meta.get("duration")
        return float(value) if value is not None else sum(o.duration for o in self.outcomes)

    def headline(self) -> str:
        """One line: how many cases, how many findings, and whether the run is complete."""
        n = len(self.outcomes)
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items()) or "no cases"
        state = "INTERRUPTED, partial: " if self.partial else ""
        verdict = f"{len(self.findings)} finding(s)" if self.findings else "no findings"
        return f"gradcheck: {state}{n} case(s), {verdict} ({counts})"


def merge(runs: Iterable[Run]) -> Run:
    """One run from several (pytest-xdist workers, CI shards), outcomes in the given order.

    A case name seen again replaces the earlier outcome in place (a re-run shard wins). The
    merged run is partial when any part is; `meta` is the first run's, with ``started`` the
    earliest start, ``duration`` the sum, and ``merged`` the number of runs.
    """
    runs = list(runs)
    outcomes: dict[str, CaseOutcome] = {}
    for run in runs:
        for outcome in run.outcomes:
            outcomes[outcome.name] = outcome
    meta: dict[str, Any] = dict(runs[0].meta) if runs else {}
    starts = [str(r.meta["started"]) for r in runs if r.meta.get("started")]
    if starts:
        meta["started"] = min(starts)
    meta["duration"] = sum(r.duration for r in runs)
    meta["merged"] = len(runs)
    return Run(tuple(outcomes.values()), any(r.partial for r in runs), meta)
