"""The human-readable text of one `Report`: what ``print(report)`` shows.

Verdict line first, then one line per check with its likely cause and, for a check that did
not pass, its worst entries (analytic vs numeric ± bound, the tolerance and the step), then
the notes. The other formats embed this text as a case's body.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class _Entry(Protocol):
    def describe(self) -> str: ...


class _Check(Protocol):
    @property
    def verdict(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def order(self) -> int: ...
    @property
    def message(self) -> str: ...
    @property
    def cause(self) -> str | None: ...
    @property
    def route(self) -> str | None: ...
    @property
    def worst(self) -> Sequence[_Entry]: ...


class _Report(Protocol):
    """The shape of `gradcheck.Report` this writer reads (structural: `Report.__str__`
    delegates here, so this module must not import `_results` back)."""

    @property
    def verdict(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def framework(self) -> str: ...
    @property
    def mode(self) -> str: ...
    @property
    def order(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def checks(self) -> Sequence[_Check]: ...
    @property
    def notes(self) -> Sequence[str]: ...


WORST_SHOWN = 5  # entries per failing check: enough to see a pattern, short enough to read


def report_text(report: _Report) -> str:
    """The report as text, one fact per line.

    Example:
        >>> import numpy as np, gradcheck as gc
        >>> report = gc.check(np.sin, np.array([0.5]), jvp=lambda x, v: np.cos(x) * v)
        >>> print(report_text(report).splitlines()[0])
        gradcheck PASS: sin (numpy, mode=full, order=1, seed=0)
    """
    lines = [
        f"gradcheck {report.verdict.upper()}: {report.name} ({report.framework}, "
        f"mode={report.mode}, order={report.order}, seed={report.seed})"
    ]
    for check in report.checks:
        order = f" order {check.order}" if check.order > 1 else ""
        route = f" ({check.route} mode)" if check.route else ""
        lines.append(f"  [{check.verdict}] {check.kind}{order}{route}: {check.message}")
        if check.cause:
            lines.append(f"      likely cause: {check.cause}")
        if check.verdict != "pass":
            lines.extend(f"      {e.describe()}" for e in check.worst[:WORST_SHOWN])
    lines.extend(f"  note: {note}" for note in report.notes)
    return "\n".join(lines)
