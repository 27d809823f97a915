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
from dataclasses import dataclass

import numpy as np

from ._compare import compare, summarise
from ._diagnosis import likely_cause
from ._numeric import THOROUGH_STARTS, chunk_size, directional, rows, thorough
from ._results import CheckResult, Kind, Tolerance
from ._richardson import NOISY_RESTART, Estimates, exact_directions
from ._taylor import review
from .adapters import Differentiable, Leaf, Unsupported, locate

COTANGENT_SCALE = 1.7
PROBES = 3
FORWARD_FULL_LIMIT = 2048  # above this many inputs, forward mode is probed, not run per column
_EPS64 = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Context:
    """Everything one order of checks needs.

    Attributes:
        fn: the analytic side. source: the numeric side (fn, or the surrogate).
        f0, s0: their values at the point. plain: fn itself when a surrogate is declared,
        to tell an override that is not in effect from a wrong one.
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


def first_order(ctx: Context) -> tuple[list[CheckResult], list[str]]:
    """Compare fn's first derivatives with finite differences of source; results and notes."""
    return _full(ctx) if ctx.mode == "full" else _fast(ctx)


def _kind(ctx: Context, mode: str) -> Kind:
    if ctx.order > 1:
        return "hvp"
    if ctx.surrogate:
        return "surrogate"
    return "vjp" if mode == "reverse" else "jvp"


def _analytic_eps(fn: Differentiable) -> float:
    return float(getattr(fn, "analytic_eps", _EPS64))


def _entry_name(
    inputs: tuple[Leaf, ...], outputs: tuple[Leaf, ...], n: int
) -> Callable[[int], str]:
    scalar_out = len(outputs) == 1 and outputs[0].size == 1

    def where(flat: int) -> str:
        row, col = divmod(flat, n)
        name = locate(inputs, col)
        return name if scalar_out else f"{name} -> {locate(outputs, row)}"

    return where


def _reverse_jacobian(fn: Differentiable) -> np.ndarray:
    """The (m, n) Jacobian from m vector-Jacobian products (Note: Cotangent scaling)."""
    size = chunk_size(fn, 1)
    blocks = [
        fn.vjps(fn.x0, COTANGENT_SCALE * rows(fn.m, i, i + size)) for i in range(0, fn.m, size)
    ]
    return np.concatenate(blocks) / COTANGENT_SCALE


def _forward_jacobian(fn: Differentiable) -> np.ndarray:
    size = chunk_size(fn, 1)
    blocks = [fn.jvps(fn.x0, rows(fn.n, i, i + size)) for i in range(0, fn.n, size)]
    return np.concatenate(blocks).T


def _not_in_effect(
    ctx: Context, analytic: np.ndarray, cols: np.ndarray, sensitivity: np.ndarray
) -> bool:
    """Does the analytic gradient match fn's own derivative instead of the surrogate's?"""
    plain = ctx.plain
    if plain is None or cols.size == 0:
        return False
    est = directional(plain, ctx.f0, rows(plain.n, 0, plain.n)[cols], sensitivity)
    own = compare(
        analytic[:, cols],
        est.value.T,
        est.error.T,
        est.kink.T,
        eps_a=_analytic_eps(ctx.fn),
        tolerance=ctx.tolerance,
    )
    return own.verdict == "pass"


_NOT_IN_EFFECT = (
    "the override is NOT in effect: the analytic gradient equals the derivative of "
    "fn itself, not the surrogate's (the custom rule is bypassed)"
)


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

    size = np.abs(fn.x0)
    magnitude = np.max([np.nan_to_num(np.abs(a), posinf=0.0) for a in analytic.values()], axis=0)
    sensitivity = (magnitude * size[None, :]).T  # (n, m): Note: Sensitivity
    est = directional(ctx.source, ctx.s0, fn.n, sensitivity)
    numeric, bound, kink = est.value.T.copy(), est.error.T.copy(), est.kink.T.copy()
    steps = np.broadcast_to(est.step, numeric.shape).copy()
    spent = est.evaluations
    where = _entry_name(fn.inputs, fn.outputs, fn.n)
    eps_a = _analytic_eps(fn)
    results = []
    for mode, a in analytic.items():
        result = compare(a, numeric, bound, kink, eps_a=eps_a, tolerance=ctx.tolerance)
        if result.mismatch.any():
            cols = np.flatnonzero(result.mismatch.any(axis=0))
            second = thorough(ctx.source, ctx.s0, rows(fn.n, 0, fn.n)[cols], sensitivity[cols])
            spent += second.evaluations
            numeric[:, cols], bound[:, cols] = second.value.T, second.error.T
            steps[:, cols] = second.step
            result = compare(a, numeric, bound, kink, eps_a=eps_a, tolerance=ctx.tolerance)

        def probe(flat: int) -> tuple[np.ndarray, np.ndarray]:
            row, col = divmod(flat, fn.n)
            return rows(fn.n, col, col + 1)[0], rows(fn.m, row, row + 1)[0]

        result, opinion = review(ctx.source, ctx.s0, result, a, numeric, probe, where, ctx.order)
        cause = None
        if result.verdict == "fail":
            cause = likely_cause(
                a,
                numeric,
                result.mismatch,
                fn.inputs,
                cotangent_scale=COTANGENT_SCALE if mode == "reverse" else 1.0,
            )
            contested = np.flatnonzero(result.mismatch.any(axis=0))
            if ctx.surrogate and _not_in_effect(ctx, a, contested, sensitivity[contested]):
                cause = _NOT_IN_EFFECT
        results.append(
            summarise(
                _kind(ctx, mode),
                result,
                a,
                numeric,
                bound,
                steps,
                where,
                tolerance=ctx.tolerance,
                order=ctx.order,
                evaluations=spent,
                cause=cause,
                kink=kink,
            )
        )
        if opinion is not None:
            results.append(opinion)
        spent = 0
    if fn.n > FORWARD_FULL_LIMIT:
        fast_results, fast_notes = _fast(ctx, modes=("forward",))
        results += fast_results
        notes += fast_notes
    if len(analytic) == 2:
        results.append(_adjoint(analytic["reverse"], analytic["forward"], where, ctx))
    return results, notes


def _adjoint(
    reverse: np.ndarray,
    forward: np.ndarray,
    where: Callable[[int], str],
    ctx: Context,
    scale: np.ndarray | None = None,
) -> CheckResult:
    """Reverse against forward mode: the same numbers by two routes, no step involved."""
    zeros = np.zeros_like(reverse)
    result = compare(
        reverse,
        forward,
        zeros,
        zeros,
        eps_a=_analytic_eps(ctx.fn),
        tolerance=ctx.tolerance,
        scale=scale,
    )
    return summarise(
        "adjoint",
        result,
        reverse,
        forward,
        zeros,
        zeros,
        where,
        tolerance=ctx.tolerance,
        order=ctx.order,
        cause="forward and reverse mode disagree: the custom forward (jvp) and "
        "backward (vjp) rules are inconsistent"
        if result.verdict == "fail"
        else None,
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
    reverse_rows = reverse_scale = None
    if "reverse" in modes:
        try:
            reverse_rows = fn.vjps(fn.x0, COTANGENT_SCALE * u) / COTANGENT_SCALE  # (k, n)
            analytic["reverse"] = (reverse_rows * v).sum(axis=1)[:, None]
            reverse_scale = np.abs(reverse_rows * v).sum(axis=1)[:, None]
        except Unsupported as why:
            notes.append(f"reverse mode not checked: {why}")
    if "forward" in modes:
        try:
            analytic["forward"] = fn.jvps(fn.x0, v)  # (k, m)
        except Unsupported as why:
            notes.append(f"forward mode not checked: {why}")
    if not analytic:
        return [], notes

    sensitivity = None
    if reverse_rows is not None:  # Note: Sensitivity; per probe, shared by its outputs
        spread = np.abs(reverse_rows * v * fn.x0[None, :]).sum(axis=1)
        scale = np.maximum(np.abs(u).max(axis=1), np.finfo(np.float64).tiny)
        sensitivity = np.repeat(np.nan_to_num(spread / scale, posinf=0.0)[:, None], fn.m, axis=1)
    est = directional(ctx.source, ctx.s0, v, sensitivity)
    spent = est.evaluations
    eps_a = _analytic_eps(fn)
    results = []
    for mode, a in analytic.items():

        def numbers(
            e: Estimates, which: np.ndarray | slice = slice(None), mode: str = mode
        ) -> tuple[np.ndarray, ...]:
            """The numeric side for these probes: J·v, or ⟨u, J·v⟩ in reverse mode."""
            value, error, kink = e.value, e.error, np.abs(e.kink)
            if mode == "reverse":
                w = u[which]
                return (
                    (w * value).sum(axis=1)[:, None],
                    (np.abs(w) * error).sum(axis=1)[:, None],
                    (np.abs(w) * kink).sum(axis=1)[:, None],
                )
            return value, error, kink

        numeric, bound, kink = (x.copy() for x in numbers(est))
        steps = np.broadcast_to(est.step[:, None], a.shape).copy()
        scale = reverse_scale if mode == "reverse" else None
        result = compare(a, numeric, bound, kink, eps_a=eps_a, tolerance=ctx.tolerance, scale=scale)
        if result.mismatch.any():
            bad = np.flatnonzero(result.mismatch.any(axis=1))
            second = thorough(
                ctx.source, ctx.s0, v[bad], None if sensitivity is None else sensitivity[bad]
            )
            spent += second.evaluations
            numeric[bad], bound[bad], _ = numbers(second, bad)
            steps[bad] = second.step[:, None]
            result = compare(
                a, numeric, bound, kink, eps_a=eps_a, tolerance=ctx.tolerance, scale=scale
            )

        def probe(
            flat: int, width: int = a.shape[1], mode: str = mode
        ) -> tuple[np.ndarray, np.ndarray]:
            row, col = divmod(flat, width)
            return v[row], (u[row] if mode == "reverse" else rows(fn.m, col, col + 1)[0])

        outputs = fn.outputs if mode == "forward" else (Leaf("<u, J v>", (), "float64", 0),)
        width = a.shape[1]

        def where(
            flat: int, outputs: tuple[Leaf, ...] = outputs, width: int = width, mode: str = mode
        ) -> str:
            row, col = divmod(flat, width)
            suffix = "" if width == 1 and mode == "forward" else f" -> {locate(outputs, col)}"
            return f"{names[row]}{suffix}"

        result, opinion = review(ctx.source, ctx.s0, result, a, numeric, probe, where, ctx.order)
        cause = None
        if result.verdict == "fail" and ctx.surrogate and ctx.plain is not None:
            plain = directional(ctx.plain, ctx.f0, v, sensitivity)
            pn, pb, pk = numbers(plain)
            if (
                compare(a, pn, pb, pk, eps_a=eps_a, tolerance=ctx.tolerance, scale=scale).verdict
                == "pass"
            ):
                cause = _NOT_IN_EFFECT
        results.append(
            summarise(
                _kind(ctx, mode),
                result,
                a,
                numeric,
                bound,
                steps,
                where,
                tolerance=ctx.tolerance,
                order=ctx.order,
                evaluations=spent,
                cause=cause,
                kink=kink,
            )
        )
        if opinion is not None:
            results.append(opinion)
        spent = 0
    if len(analytic) == 2 and reverse_rows is not None:
        by_reverse = (reverse_rows * v).sum(axis=1)[:, None]
        by_forward = (u * analytic["forward"]).sum(axis=1)[:, None]
        scale = np.abs(reverse_rows * v).sum(axis=1) + np.abs(u * analytic["forward"]).sum(axis=1)
        results.append(_adjoint(by_reverse, by_forward, names.__getitem__, ctx, scale[:, None]))
    return results, notes
