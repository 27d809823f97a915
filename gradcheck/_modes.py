"""The two ways to compare one order of derivatives: every entry ("full") or projections ("fast").

Note: Cotangent scaling
    Reverse-mode cotangents are multiplied by COTANGENT_SCALE (not a power of two) and the
    result divided by it again. A correct backward is linear in its incoming gradient and
    does not notice; a backward that ignores grad_output (a real, recurring bug) comes back
    off by exactly that factor, even for scalar losses where the cotangent would otherwise
    be 1 and the bug invisible.

Note: Random projections
    Fast mode draws PROBES random directions per input leaf (each direction touches one leaf
    only, so a small leaf is not drowned by a large one) and compares the directional
    derivative J·v with its finite-difference estimate (forward mode) and ⟨u, J·v⟩ with
    ⟨Jᵀu, v⟩ for a random cotangent u (reverse mode). The cost is a few ladders per leaf,
    whatever the leaf's size; an error of relative size δ in one of k entries shifts a
    projection by about δ/√k of its size, which is what bounds fast mode's power.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ._compare import Comparison, Numbers, compare, summarise
from ._diagnosis import likely_cause
from ._differentiable import Differentiable, Leaf, Unsupported, locate
from ._numeric import THOROUGH_STARTS, chunk_size, directional, thorough
from ._results import CheckResult, Kind, Tolerance
from ._richardson import (
    NOISE_ULPS,
    NOISY_RESTART,
    Coordinates,
    Directions,
    Estimates,
    exact_directions,
)
from ._taylor import review

COTANGENT_SCALE = 1.7
PROBES = 3
STEP_TARGET = 1e-9  # relative round-off a first ladder should stay under (_noise_aware_start)
NOISE_SIGMAS = 3.0
FORWARD_FULL_LIMIT = 2048  # above this many inputs, forward mode is probed, not run per column


@dataclass(frozen=True)
class Context:
    """Everything one order of checks needs.

    Attributes:
        fn: the analytic side. source: the numeric side (fn, or the surrogate).
        f0, s0: their values at the point. plain: fn itself when a surrogate is declared,
        to tell an override that is not in effect from a wrong one. sigma: the measured
        round-off noise of source's values.
    """

    fn: Differentiable
    source: Differentiable
    f0: np.ndarray
    s0: np.ndarray
    tolerance: Tolerance
    rng: np.random.Generator
    order: int
    mode: str
    surrogate: bool
    plain: Differentiable | None
    sigma: np.ndarray  # measured round-off of source's values, per output (Note: Measured noise)


def first_order(ctx: Context) -> tuple[list[CheckResult], list[str]]:
    """Compare fn's first derivatives with finite differences of source; results and notes."""
    return _full(ctx) if ctx.mode == "full" else _fast(ctx)


def _kind(ctx: Context, mode: str) -> Kind:
    if ctx.order > 1:
        return "hvp"
    if ctx.surrogate:
        return "surrogate"
    return "vjp" if mode == "reverse" else "jvp"


def _noise_aware_start(ctx: Context, noise_level: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """The smallest first step per direction that keeps the ladder above round-off.

    With three rows h, h/2, h/4 of a central difference, round-off in the last row is about
    4·(noise of one value)/h, and extrapolation amplifies it up to about 2x; asking for
    STEP_TARGET of the derivative's size there gives h >= 8·noise/(STEP_TARGET·|slope|).
    `slope` (d,) is the analytic derivative's size along each direction; where it is 0 (a
    missing gradient) there is no floor.
    """
    per_value = NOISE_ULPS * ctx.source.eps * np.abs(ctx.s0)[None, :] + noise_level  # (d, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = 8 * per_value.max(axis=1) / (STEP_TARGET * slope)
    least: np.ndarray = np.where(np.isfinite(floor) & (slope > 0), floor, 0.0)
    return least


def _noise_level(ctx: Context, sensitivity: np.ndarray) -> np.ndarray:
    """Round-off of one value of f beyond eps·|f| (Note: Noise level in `_richardson`).

    `sensitivity` (d, m) is Σ_i |x_i·d_i·∂_i f| from the analytic side: argument rounding.
    The measured noise counts NOISE_SIGMAS standard deviations.
    """
    level: np.ndarray = (
        NOISE_ULPS * ctx.source.eps * sensitivity + NOISE_SIGMAS * ctx.sigma[None, :]
    )
    return level


def _analytic_eps(fn: Differentiable) -> float:
    return float(getattr(fn, "analytic_eps", fn.eps))  # code in float32: float32 gradients


def _entry_name(
    inputs: tuple[Leaf, ...], outputs: tuple[Leaf, ...], n: int
) -> Callable[[int], str]:
    scalar_out = len(outputs) == 1 and outputs[0].size == 1

    def where(flat: int) -> str:
        row, col = divmod(flat, n)
        name = locate(inputs, col)
        return name if scalar_out else f"{name} -> {locate(outputs, row)}"

    return where


def _units(n: int, start: int, stop: int) -> np.ndarray:
    """Unit vectors e_start … e_stop-1 of R^n as dense rows (for the analytic side)."""
    return Coordinates(np.arange(start, min(stop, n)), n).dense()


def _reverse_jacobian(fn: Differentiable) -> np.ndarray:
    """The (m, n) Jacobian from m vector-Jacobian products (Note: Cotangent scaling)."""
    size = chunk_size(fn, 1)
    blocks = [
        fn.vjps(fn.x0, COTANGENT_SCALE * _units(fn.m, i, i + size)) for i in range(0, fn.m, size)
    ]
    return np.concatenate(blocks) / COTANGENT_SCALE


def _forward_jacobian(fn: Differentiable) -> np.ndarray:
    size = chunk_size(fn, 1)
    blocks = [fn.jvps(fn.x0, _units(fn.n, i, i + size)) for i in range(0, fn.n, size)]
    return np.concatenate(blocks).T


_NOT_IN_EFFECT = (
    "the override is NOT in effect: the analytic gradient equals the derivative of "
    "fn itself, not the surrogate's (the custom rule is bypassed)"
)


@dataclass(frozen=True)
class _Layout:
    """How one check's entries relate to the directions the engine differentiates along.

    Attributes:
        numbers: turns estimates along directions[which] into entries (rows or columns).
        contested: the directions behind the mismatched entries of a comparison.
        index: where the entries of those directions sit, for `Numbers.assign`.
        probe: (direction, cotangent) of one flat entry, for the Taylor-remainder test.
        directions: rows of the directions (coordinate directions are built on demand).
        noise_level: Note: Noise level in `_richardson`, per direction.
    """

    numbers: Callable[[Estimates, np.ndarray], Numbers]
    contested: Callable[[Comparison], np.ndarray]
    index: Callable[[np.ndarray], Any]
    probe: Callable[[int], tuple[np.ndarray, np.ndarray]]
    directions: Callable[[np.ndarray], Directions]
    noise_level: np.ndarray


def _judge(
    ctx: Context,
    mode: str,
    analytic: np.ndarray,
    numbers: Numbers,
    layout: _Layout,
    where: Callable[[int], str],
    spent: int,
    scale: np.ndarray | None = None,
) -> tuple[list[CheckResult], Comparison]:
    """Compare, re-estimate contested entries, ask for second opinions, and word the result."""
    eps_a = _analytic_eps(ctx.fn)

    def judge() -> Comparison:
        return compare(analytic, numbers, eps_a=eps_a, tolerance=ctx.tolerance, scale=scale)

    def noise_level(which: np.ndarray) -> np.ndarray:
        level: np.ndarray = layout.noise_level[which]
        return level

    result = judge()
    if result.mismatch.any():
        which = layout.contested(result)
        second = thorough(ctx.source, ctx.s0, layout.directions(which), noise_level(which))
        spent += second.evaluations
        numbers.assign(layout.index(which), layout.numbers(second, which))
        result = judge()
    result, opinion = review(
        ctx.source,
        ctx.s0,
        ctx.sigma,
        result,
        analytic,
        numbers.value,
        layout.probe,
        where,
        ctx.order,
    )
    cause = None
    if result.verdict == "fail":
        if mode == "reverse" or analytic.shape[1] == ctx.fn.n:
            cause = likely_cause(
                analytic,
                numbers.value,
                result.mismatch,
                ctx.fn.inputs,
                cotangent_scale=COTANGENT_SCALE if mode == "reverse" else 1.0,
            )
        if ctx.surrogate and ctx.plain is not None:
            which = layout.contested(result)
            own = directional(ctx.plain, ctx.f0, layout.directions(which), noise_level(which))
            index = layout.index(which)
            agrees = compare(
                analytic[index],
                layout.numbers(own, which),
                eps_a=eps_a,
                tolerance=ctx.tolerance,
            )
            if agrees.verdict == "pass":
                cause = _NOT_IN_EFFECT
    results = [
        summarise(
            _kind(ctx, mode),
            result,
            analytic,
            numbers,
            where,
            tolerance=ctx.tolerance,
            order=ctx.order,
            evaluations=spent,
            cause=cause,
        )
    ]
    return results + ([opinion] if opinion is not None else []), result


def _full(ctx: Context) -> tuple[list[CheckResult], list[str]]:
    fn, notes = ctx.fn, []
    analytic: dict[str, np.ndarray] = {}
    try:
        analytic["reverse"] = _reverse_jacobian(fn)
    except Unsupported as why:
        notes.append(f"reverse mode not checked: {why}")
    if fn.n <= FORWARD_FULL_LIMIT:
        try:
            analytic["forward"] = _forward_jacobian(fn)
        except Unsupported as why:
            notes.append(f"forward mode not checked: {why}")
    else:
        notes.append(
            f"forward mode checked by random projections: {fn.n} inputs exceed "
            f"{FORWARD_FULL_LIMIT} JVPs"
        )
    if not analytic:
        return [], notes

    magnitude = np.max([np.nan_to_num(np.abs(a), posinf=0.0) for a in analytic.values()], axis=0)
    noise_level = _noise_level(ctx, (magnitude * np.abs(fn.x0)[None, :]).T)  # (n, m)

    def numbers(est: Estimates, which: np.ndarray) -> Numbers:  # columns `which`
        step = np.broadcast_to(est.step[None, :], (fn.m, len(which))).copy()
        return Numbers(est.value.T, est.error.T, est.noise.T, est.kink.T, step)

    def probe(flat: int) -> tuple[np.ndarray, np.ndarray]:
        row, col = divmod(flat, fn.n)
        return _units(fn.n, col, col + 1)[0], _units(fn.m, row, row + 1)[0]

    layout = _Layout(
        numbers=numbers,
        contested=lambda result: np.flatnonzero(result.mismatch.any(axis=0)),
        index=lambda which: (slice(None), which),
        probe=probe,
        directions=lambda which: Coordinates(which, fn.n),
        noise_level=noise_level,
    )
    least = _noise_aware_start(ctx, noise_level, magnitude.max(axis=0))
    est = directional(ctx.source, ctx.s0, Coordinates(np.arange(fn.n), fn.n), noise_level, least)
    spent = est.evaluations
    every = np.arange(fn.n)
    where = _entry_name(fn.inputs, fn.outputs, fn.n)
    results: list[CheckResult] = []
    unresolved = np.zeros((fn.m, fn.n), dtype=bool)
    resolution = np.zeros((fn.m, fn.n))
    for mode, a in analytic.items():
        judged, comparison = _judge(ctx, mode, a, numbers(est, every), layout, where, spent)
        results += judged
        unresolved |= comparison.unresolved
        resolution = np.fmax(resolution, comparison.allowed)
        spent = 0
    if fn.n > FORWARD_FULL_LIMIT:
        fast_results, fast_notes = _fast(ctx, modes=("forward",))
        results += fast_results
        notes += fast_notes
    if len(analytic) == 2:
        results.append(
            _adjoint(
                analytic["reverse"],
                analytic["forward"],
                where,
                ctx,
                undecidable=unresolved,
                resolution=resolution,
            )
        )
    return results, notes


def _adjoint(
    reverse: np.ndarray,
    forward: np.ndarray,
    where: Callable[[int], str],
    ctx: Context,
    scale: np.ndarray | None = None,
    undecidable: np.ndarray | None = None,
    resolution: np.ndarray | None = None,
) -> CheckResult:
    """Reverse against forward mode: the same numbers by two routes, no step involved.

    Entries the finite differences could not tell from zero (`undecidable`) are where both
    routes may return nothing but round-off, such as the gradient of a loss that is
    identically 0; a disagreement there is unresolved, not a failure.

    Each route rounds on its own, at the scale of intermediate terms the checker cannot see
    (JAX's tanh-approximated gelu computes a 1e-13 derivative from terms near 1 by
    cancellation, differently in each mode: 10x the analytic rounding budget, measured). So
    the routes must also differ by more than the finite differences can resolve for that
    entry (`resolution`: the budget of the finite-difference comparisons) before they are
    called inconsistent; below it, the numbers cannot say which route is off.
    """
    zeros = np.zeros_like(forward)
    slack = zeros if resolution is None else resolution / ctx.tolerance.safety
    other = Numbers(forward, slack, zeros, zeros, zeros)
    result = compare(
        reverse, other, eps_a=_analytic_eps(ctx.fn), tolerance=ctx.tolerance, scale=scale
    )
    if undecidable is not None:
        result = replace(
            result,
            mismatch=result.mismatch & ~undecidable,
            unresolved=result.unresolved | (result.mismatch & undecidable),
        )
    cause = (
        (
            "forward and reverse mode disagree: the custom forward (jvp) and backward (vjp) "
            "rules are inconsistent"
        )
        if result.verdict == "fail"
        else None
    )
    return summarise(
        "adjoint",
        result,
        reverse,
        other,
        where,
        tolerance=ctx.tolerance,
        order=ctx.order,
        cause=cause,
    )


def probes(fn: Differentiable, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """PROBES random directions per input leaf, each supported on its leaf only.

    They are nudged so that finite differences along them step exactly (Note: Exact steps).
    """
    directions, names = [], []
    for leaf in fn.inputs:
        for k in range(PROBES):
            d = np.zeros(fn.n)
            r = rng.standard_normal(leaf.size)
            d[leaf.offset : leaf.offset + leaf.size] = r / np.abs(r).max()
            directions.append(d)
            names.append(f"{leaf.name} (probe {k})")
    largest = max(THOROUGH_STARTS) * NOISY_RESTART
    return exact_directions(fn.x0, np.array(directions), largest), names


def _fast(
    ctx: Context, modes: tuple[str, ...] = ("reverse", "forward")
) -> tuple[list[CheckResult], list[str]]:
    fn, notes = ctx.fn, []
    v, names = probes(fn, ctx.rng)
    u = ctx.rng.standard_normal((len(v), fn.m))
    analytic: dict[str, np.ndarray] = {}
    reverse_rows = None
    if "reverse" in modes:
        try:
            reverse_rows = fn.vjps(fn.x0, COTANGENT_SCALE * u) / COTANGENT_SCALE  # (k, n)
            analytic["reverse"] = (reverse_rows * v).sum(axis=1)[:, None]
        except Unsupported as why:
            notes.append(f"reverse mode not checked: {why}")
    if "forward" in modes:
        try:
            analytic["forward"] = fn.jvps(fn.x0, v)  # (k, m)
        except Unsupported as why:
            notes.append(f"forward mode not checked: {why}")
    if not analytic:
        return [], notes

    spread = np.zeros((len(v), fn.m))
    if reverse_rows is not None:  # per probe, shared by its outputs
        total = np.abs(reverse_rows * v * fn.x0[None, :]).sum(axis=1)
        size = np.maximum(np.abs(u).max(axis=1), np.finfo(np.float64).tiny)
        spread[:] = np.nan_to_num(total / size, posinf=0.0)[:, None]
    noise_level = _noise_level(ctx, spread)
    slope = np.abs(next(iter(analytic.values()))).max(axis=1)
    if reverse_rows is not None:
        slope = np.abs(reverse_rows * v).sum(axis=1)  # ⟨g, v⟩ can cancel; its terms cannot
    least = _noise_aware_start(ctx, noise_level, np.nan_to_num(slope, posinf=0.0))
    est = directional(ctx.source, ctx.s0, v, noise_level, least)
    spent = est.evaluations
    every = np.arange(len(v))
    results = []
    resolution: np.ndarray | None = None
    for mode, a in analytic.items():

        def numbers(
            e: Estimates, which: np.ndarray, mode: str = mode, width: int = a.shape[1]
        ) -> Numbers:
            """The numeric side for probes `which`: J·v, or ⟨u, J·v⟩ in reverse mode."""
            step = np.broadcast_to(e.step[:, None], (len(which), width)).copy()
            if mode == "forward":
                return Numbers(e.value, e.error, e.noise, e.kink, step)
            w, size = u[which], np.abs(u[which])

            def project(weight: np.ndarray, part: np.ndarray) -> np.ndarray:
                total: np.ndarray = (weight * part).sum(axis=1)
                return total[:, None]

            return Numbers(
                project(w, e.value),
                project(size, e.error),
                project(size, e.noise),
                project(size, np.abs(e.kink)),
                step,
            )

        def probe(
            flat: int, width: int = a.shape[1], mode: str = mode
        ) -> tuple[np.ndarray, np.ndarray]:
            row, col = divmod(flat, width)
            return v[row], (u[row] if mode == "reverse" else _units(fn.m, col, col + 1)[0])

        outputs = fn.outputs if mode == "forward" else (Leaf("<u, J v>", (), "float64", 0),)

        def where(
            flat: int,
            outputs: tuple[Leaf, ...] = outputs,
            width: int = a.shape[1],
            mode: str = mode,
        ) -> str:
            row, col = divmod(flat, width)
            suffix = "" if width == 1 and mode == "forward" else f" -> {locate(outputs, col)}"
            return f"{names[row]}{suffix}"

        layout = _Layout(
            numbers=numbers,
            contested=lambda result: np.flatnonzero(result.mismatch.any(axis=1)),
            index=lambda which: which,
            probe=probe,
            directions=lambda which: v[which],
            noise_level=noise_level,
        )
        scale = (
            np.abs(reverse_rows * v).sum(axis=1)[:, None]
            if mode == "reverse" and reverse_rows is not None
            else None
        )
        judged, comparison = _judge(
            ctx, mode, a, numbers(est, every), layout, where, spent, scale
        )
        results += judged
        if mode == "reverse":  # the budget of <u, J v>: what the adjoint check compares
            resolution = comparison.allowed
        spent = 0
    if len(analytic) == 2 and reverse_rows is not None:
        by_reverse = (reverse_rows * v).sum(axis=1)[:, None]
        by_forward = (u * analytic["forward"]).sum(axis=1)[:, None]
        scale = np.abs(reverse_rows * v).sum(axis=1) + np.abs(u * analytic["forward"]).sum(axis=1)
        results.append(
            _adjoint(
                by_reverse,
                by_forward,
                names.__getitem__,
                ctx,
                scale[:, None],
                resolution=resolution,
            )
        )
    return results, notes
