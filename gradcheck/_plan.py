"""What a check will cost, decided before it runs: the budget, and a word on long checks.

Full mode spends about EVALUATIONS_PER_COORDINATE evaluations per input coordinate and order,
and holds dense (m, n) Jacobians. A user who set `max_evaluations` gets fast mode (cost
independent of the size) instead of a check past the budget, as does a check whose Jacobians
would not fit in memory; a check that will plainly take long says so up front with a hint,
rather than running silently for minutes (n = 1e5 ran past 120 s unannounced), and shows its
progress on a terminal (`_progress`).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from ._differentiable import Differentiable
from ._options import Options

EVALUATIONS_PER_COORDINATE = 8  # measured mean on the families: 6 to 8, retries included
FULL_ARRAYS = 32  # (m, n) float64 arrays full mode holds at once: ~27 measured (slice_scatter)
MEMORY_SHARE = 0.25  # of this machine's memory, the most a full check may plan to hold
LONG_SECONDS = 10.0
TIMED_POINTS = 8
TIMED_FROM = 256  # coordinates below which a check is quick whatever f costs

logger = logging.getLogger("gradcheck")


class Plan(NamedTuple):
    """What `plan` decided.

    Attributes:
        options: the options to run with (full mode may have become fast).
        notes: why, for the report.
        long: the evaluations a full check is expected to need, when it will take long
            enough to be worth a progress bar (`_progress`); else None.
    """

    options: Options
    notes: tuple[str, ...]
    long: int | None = None


def plan(options: Options, target: Differentiable) -> Plan:
    """The options to run with (full mode may become fast), and notes saying why."""
    notes: list[str] = []
    if options.step is not None:
        notes.append(
            f"step={options.step:g}: central differences at that fixed step (their error from "
            "step/2); the adaptive step and the thorough second look were bypassed"
        )
    if options.mode != "full":
        return Plan(options, tuple(notes))
    needed = EVALUATIONS_PER_COORDINATE * target.n * options.order
    if options.max_evaluations is not None and needed > options.max_evaluations:
        notes.append(
            f"checked in fast mode: full mode needs about {needed} evaluations "
            f"({EVALUATIONS_PER_COORDINATE} per coordinate), over max_evaluations="
            f"{options.max_evaluations}"
        )
        return Plan(replace(options, mode="fast"), tuple(notes))
    held, memory = FULL_ARRAYS * 8 * target.m * target.n, _memory()
    if held > MEMORY_SHARE * memory:
        notes.append(
            f"checked in fast mode: full mode would hold {target.m}x{target.n} Jacobians, "
            f"about {held / 2**30:.0f} GiB, past {MEMORY_SHARE:.0%} of this machine's "
            f"{memory / 2**30:.0f} GiB (OpInfo's slice_scatter with n = 12000 was killed for "
            "memory); pass fewer inputs with wrt= to check them entry by entry"
        )
        return Plan(replace(options, mode="fast"), tuple(notes))
    long = target.n >= TIMED_FROM and _announce_if_long(target, needed)
    return Plan(options, tuple(notes), needed if long else None)


def _memory() -> float:
    """This machine's physical memory in bytes (a generous 16 GiB where it cannot be read)."""
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):  # not POSIX
        return 16.0 * 2**30


def _announce_if_long(target: Differentiable, needed: int) -> bool:
    """Log an estimate and a hint when a full check will take more than LONG_SECONDS; whether
    it will."""
    start = time.perf_counter()
    target.values(np.repeat(target.x0[None, :], TIMED_POINTS, axis=0))
    seconds = (time.perf_counter() - start) / TIMED_POINTS * needed
    if seconds > LONG_SECONDS:
        logger.warning(
            "gradcheck: a full check of %d coordinates needs about %d evaluations, roughly "
            "%.0f s here; mode='fast' checks random projections at a cost independent of the "
            "size, and max_evaluations= sets a budget",
            target.n,
            needed,
            seconds,
        )
    return seconds > LONG_SECONDS
