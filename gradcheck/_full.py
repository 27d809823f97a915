"""Full mode: every entry of the Jacobian, by reverse mode, forward mode and differences.

The analytic Jacobian comes from m vector-Jacobian products (reverse mode) and n
Jacobian-vector products (forward mode); the numeric one from one ladder per input
coordinate. Each is judged entry by entry, and the two analytic routes against each other.
Above FORWARD_FULL_LIMIT inputs, forward mode is checked by random projections instead
(`_fast`), since n JVPs would cost more than the check they serve.
"""

from __future__ import annotations

import numpy as np

from ._compare import Numbers
from ._differentiable import Differentiable, Unsupported
from ._errors import UsageError
from ._fast import fast
from ._fd import Coordinates, Estimates, chunk_size, finite_size
from ._judge import (
    Context,
    Layout,
    Route,
    adjoint,
    entry_name,
    judge,
    judged_alike,
    noise_aware_start,
    noise_level,
    scaled_vjps,
    units,
)
from ._results import CheckResult
from ._rounding import AnalyticAt

FORWARD_FULL_LIMIT = 2048  # above this many inputs, forward mode is probed, not run per column


def reverse_jacobian(fn: Differentiable) -> np.ndarray:
    """The (m, n) Jacobian from m vector-Jacobian products (Note: Cotangent scaling)."""
    size = chunk_size(fn, 1)
    blocks = [scaled_vjps(fn, units(fn.m, i, i + size)) for i in range(0, fn.m, size)]
    return np.concatenate(blocks)


def forward_jacobian(fn: Differentiable) -> np.ndarray:
    """The (m, n) Jacobian from n Jacobian-vector products."""
    size = chunk_size(fn, 1)
    blocks = [fn.jvps(fn.x0, units(fn.n, i, i + size)) for i in range(0, fn.n, size)]
    return np.concatenate(blocks).T


def _recompute(fn: Differentiable, route: Route) -> AnalyticAt:
    """The analytic Jacobian's entries in a mask at another point: the rows they sit in by
    reverse mode, their columns by forward mode (Note: Measured analytic noise)."""

    def at(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        entries = np.full(mask.shape, np.nan)
        if route == "reverse":
            rows = np.flatnonzero(mask.any(axis=1))
            entries[rows] = scaled_vjps(fn, Coordinates(rows, fn.m).dense(), x)
        else:
            columns = np.flatnonzero(mask.any(axis=0))
            entries[:, columns] = fn.jvps(x, Coordinates(columns, fn.n).dense()).T
        return entries

    return at


def _analytic(ctx: Context, notes: list[str], failed: list[CheckResult]) -> dict[Route, np.ndarray]:
    """The analytic Jacobian by every route asked for that the function supports."""
    fn, routes = ctx.fn, ctx.routes
    analytic: dict[Route, np.ndarray] = {}
    if "reverse" in routes:
        try:
            analytic["reverse"] = reverse_jacobian(fn)
        except Unsupported as why:
            notes.append(f"reverse mode not checked: {why}")
            failed += [r for r in [ctx.missing("reverse", why)] if r]
        except UsageError:  # a hand-written derivative of the wrong shape: the user's to fix
            raise
        except Exception as error:  # the user's backward, at the user's point
            failed.append(ctx.backward_raised(error))
    if "forward" not in routes:
        return analytic
    if fn.n > FORWARD_FULL_LIMIT:
        notes.append(
            f"forward mode checked by random projections: {fn.n} inputs exceed "
            f"{FORWARD_FULL_LIMIT} JVPs"
        )
        return analytic
    try:
        analytic["forward"] = forward_jacobian(fn)
    except Unsupported as why:
        notes.append(f"forward mode not checked: {why}")
        failed += [r for r in [ctx.missing("forward", why)] if r]
    return analytic


def _layout(fn: Differentiable, level: np.ndarray) -> Layout:
    """Entries are Jacobian columns: the numeric side differentiates along coordinates."""

    def numbers(est: Estimates, which: np.ndarray) -> Numbers:
        step = np.broadcast_to(est.step[None, :], (fn.m, len(which))).copy()
        return Numbers(est.value.T, est.error.T, est.noise.T, est.kink.T, step)

    def probe(flat: int) -> tuple[np.ndarray, np.ndarray]:
        row, col = divmod(flat, fn.n)
        return units(fn.n, col, col + 1)[0], units(fn.m, row, row + 1)[0]

    return Layout(
        numbers=numbers,
        contested=lambda mask: np.flatnonzero(mask.any(axis=0)),
        index=lambda which: (slice(None), which),
        probe=probe,
        directions=lambda which: Coordinates(which, fn.n),
        noise_level=level,
        steps=lambda step, which: step[0, which],
    )


def full(ctx: Context) -> tuple[list[CheckResult], list[str]]:
    """Check every Jacobian entry; the results and notes (routes not checked, and why)."""
    fn = ctx.fn
    notes: list[str] = []
    results: list[CheckResult] = []
    analytic = _analytic(ctx, notes, results)
    if not analytic:
        return results, notes

    magnitude = np.max([finite_size(a) for a in analytic.values()], axis=0)
    level = noise_level(ctx, (magnitude * np.abs(fn.x0)[None, :]).T)  # (n, m)
    layout = _layout(fn, level)
    least = noise_aware_start(ctx, level, magnitude.max(axis=0))
    every = np.arange(fn.n)
    expected = tuple(a.T for a in analytic.values())  # per coordinate: Jacobian columns
    est = ctx.differences(Coordinates(every, fn.n), level, least, expected)
    spent = est.evaluations
    where = entry_name(fn.inputs, fn.outputs, fn.n)
    unresolved = np.zeros((fn.m, fn.n), dtype=bool)
    resolution = np.zeros((fn.m, fn.n))
    earlier: tuple[np.ndarray, list[CheckResult]] | None = None
    # One numeric side for both routes: what the first route's judgement re-estimated
    # (thorough looks, the second grid, averaging) is known to the second, which then only
    # looks again where its own entries still contest the numbers.
    numbers = layout.numbers(est, every)
    for route, a in analytic.items():
        alike = None if earlier is None else judged_alike(ctx, route, a, earlier)
        if alike is not None:  # the same entries as the route before: the same judgement
            results += alike if ctx.reports(route) else []
            continue
        conditioning = finite_size(a) * np.abs(fn.x0)[None, :]
        judged, comparison = judge(
            ctx,
            route,
            a,
            numbers,
            layout,
            where,
            spent,
            None,
            conditioning,
            _recompute(fn, route),
        )
        if ctx.reports(route):
            results += judged
        unresolved |= comparison.unresolved
        resolution = np.fmax(resolution, comparison.allowed)
        spent = 0
        earlier = (a, judged)
    if fn.n > FORWARD_FULL_LIMIT and "forward" in ctx.routes:
        fast_results, fast_notes = fast(ctx, routes=("forward",))
        results += fast_results
        notes += fast_notes
    if len(analytic) == 2 and "adjoint" in ctx.kinds:
        results.append(
            adjoint(
                analytic["reverse"],
                analytic["forward"],
                where,
                ctx,
                undecidable=unresolved,
                resolution=resolution,
            )
        )
    return results, notes
