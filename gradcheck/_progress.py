"""A progress bar for a long full check, on a terminal only.

A full check that `_plan` expects to run past LONG_SECONDS is announced in a log line with an
estimate and a hint. On a terminal it also draws a bar of the function evaluations done
against the plan, fed by counting the points the numeric side evaluates, so no part of the
engine needs to know about it. Anywhere else (pytest's capture, a CI log, a pipe) nothing is
drawn and nothing is imported: rich loads only when a bar is shown.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import numpy as np

from ._differentiable import Differentiable

Advance = Callable[[int], None]


class Counted(Differentiable):
    """`inner`'s values, with every evaluated point reported to `advance`."""

    def __init__(self, inner: Differentiable, advance: Advance) -> None:
        super().__init__(inner.x0, inner.inputs, inner.outputs, eps=inner.eps, notes=inner.notes)
        self.framework = inner.framework  # type: ignore[misc]
        self._inner, self._advance = inner, advance

    def value(self, x: np.ndarray) -> np.ndarray:
        self._advance(1)
        return self._inner.value(x)

    def values(self, xs: np.ndarray) -> np.ndarray:
        self._advance(len(xs))
        return self._inner.values(xs)


@contextlib.contextmanager
def progress(total: int | None, what: str) -> Iterator[Advance | None]:
    """A bar for `total` evaluations while the block runs, if there is a terminal to draw on;
    yields how to advance it, or None when nothing is drawn (`total` None: not a long check)."""
    if total is None or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda points: bar.advance(task, points)
