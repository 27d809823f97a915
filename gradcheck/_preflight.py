"""What is decided before any derivative is compared, and the informative dtype audit.

A function that returns different values at the same point cannot be checked by differences
at all ("nondeterministic"), and one whose value is NaN/inf at the point has nothing finite
to differentiate ("nonfinite"): both end the check with that verdict. After the checks, the
user's own-dtype gradient is compared with the float64 one, for information only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._differentiable import Differentiable, Unsupported
from ._results import CheckResult
from ._user_derivatives import as_array

_NONDETERMINISTIC = (
    "two evaluations at the same point differ (by {gap:.3g} at output entry {where}): seed the "
    "randomness, or call model.eval() to turn off dropout and the state a module updates as "
    "it runs (batch-norm statistics, spectral-norm power iterations)"
)


class Preflight(NamedTuple):
    """What `preflight` found.

    Attributes:
        f0: (m,) f(x0), a plain evaluation.
        stop: the verdict that ends the check before it starts, if any.
        jitter: the largest difference seen between repeated evaluations at x0.
        alongside: (k, m) f at the points the caller asked to have evaluated in the same
            batched call, or None where that call failed (evaluate them again, guarded).
    """

    f0: np.ndarray
    stop: CheckResult | None
    jitter: float
    alongside: np.ndarray | None = None


def preflight(
    target: Differentiable, nondet_tol: float, alongside: np.ndarray | None = None
) -> Preflight:
    """f(x0), the verdict that ends the check before it starts (if any), and the jitter seen.

    The point is evaluated again singly and twice through the batched path: an adapter that
    replays the user's RNG state makes repeated single calls agree, while the batched calls
    the ladder makes draw fresh randomness (unseeded dropout under vmap). Repeats may differ
    by JITTER_ULPS of f's size — multithreaded BLAS sums in a different order from call to
    call, and a batched kernel rounds differently (1e-15 on lstsq) — and by `nondet_tol`,
    legitimate nondeterminism the user declared (atomics); the largest difference seen is
    returned, for the noise budget. Anything larger is "nondeterministic".

    The batched repeats share one call with the points `alongside` (the noise table): a
    small check's cost is its number of calls into the framework. Where that call raises,
    the repeats are evaluated alone, so an exception at x0 propagates unchanged and one at a
    point gradcheck chose is left to the guarded evaluation that follows. Evaluations the
    binding already made at x0 (`at_point`) stand in for the single ones; f0 itself is always
    a plain evaluation, by the path every later point takes.
    """
    x0 = target.x0
    extra = np.empty((0, target.n)) if alongside is None else alongside
    table: np.ndarray | None = None
    try:
        rows = target.values(np.vstack([x0, x0, extra]))
        batched, table = rows[:2], rows[2:]
    except Exception:
        if not len(extra):
            raise
        batched = target.values(np.stack([x0, x0]))
    known = target.at_point  # read after the batched call: its cross-check may fill it in
    f0 = target.value(x0) if known is None or known.plain is None else known.plain
    again = target.value(x0) if known is None else known.single
    repeats = np.vstack([again[None, :], batched])
    with np.errstate(invalid="ignore"):
        jitter = JITTER_ULPS * target.eps * float(np.nanmax(np.abs(f0), initial=0.0))
    allowed = max(nondet_tol, jitter)
    gaps = _gap(f0[None, :], repeats)  # (repeats, m)
    if (gaps > allowed).any():
        worst = gaps.max(axis=0)
        where = int(np.argmax(worst))
        message = _NONDETERMINISTIC.format(gap=float(worst[where]), where=where)
        return Preflight(f0, CheckResult("vjp", "nondeterministic", message), 0.0)
    if not np.isfinite(f0).all():
        message = "the function's value is NaN or inf at this point"
        return Preflight(f0, CheckResult("vjp", "nonfinite", message), 0.0)
    return Preflight(f0, None, float(gaps.max(initial=0.0)), None if alongside is None else table)


JITTER_ULPS = 64.0


def _gap(f0: np.ndarray, again: np.ndarray) -> np.ndarray:
    """|f0 - again| per entry (broadcast): 0 where equal (NaN equals NaN), inf where one is
    not finite."""
    with np.errstate(invalid="ignore"):
        same = (f0 == again) | (np.isnan(f0) & np.isnan(again))
        difference = f0 - again
    gap: np.ndarray = np.where(
        same, 0.0, np.where(np.isfinite(difference), np.abs(difference), np.inf)
    )
    return gap


def dtype_audit(
    target: Differentiable, rng: np.random.Generator
) -> tuple[CheckResult | None, str | None]:
    """How far the user's own-dtype gradient is from the float64 one (informative).

    Informative only: if computing it fails (a Keras layer built in float32 that skips its
    input autocasting on float64 copies), the verdict already reached stands and a note says
    why there is no audit.
    """
    u = np.ones(target.m) if target.m == 1 else rng.standard_normal(target.m)
    try:
        native = target.native_vjp(u)
        if native is None:
            return None, None
        truth = target.vjp(target.x0, u)
        native = as_array(native).astype(np.float64).ravel()
    except Unsupported:
        return None, None
    except Exception as error:  # informative only: never lose the verdict to it
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        why = f"{type(error).__name__}: {reason}"
        return None, f"dtype audit skipped: the gradient in the user's dtype failed ({why})"
    with np.errstate(invalid="ignore", over="ignore"):  # NaN gradients are the verdict's job
        scale = float(np.nanmax(np.abs(truth), initial=0.0)) or 1.0
        worst = float(np.nanmax(np.abs(native - truth), initial=0.0)) / scale
    dtypes = sorted({leaf.dtype for leaf in target.inputs})
    message = (
        f"the gradient in the user's dtype ({', '.join(dtypes)}) differs from the float64 one "
        f"by up to {worst:.2g} of its largest entry (informative)"
    )
    return CheckResult("dtype", "pass", message), None
