"""Fast mode: seeded random projections, at a cost independent of the input size.

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

from ._compare import EntryNames, Numbers
from ._differentiable import Differentiable, Leaf, Unsupported, locate
from ._errors import UsageError
from ._fd import LARGEST_START, Estimates, exact_directions
from ._judge import (
    Context,
    Layout,
    Route,
    adjoint,
    judge,
    noise_aware_start,
    noise_level,
    scaled_vjps,
    units,
)
from ._results import CheckResult
from ._rounding import AnalyticAt

PROBES = 3


@dataclass(frozen=True)
class Probes:
    """Random directions, PROBES per input leaf, each supported on its leaf only.

    Attributes:
        v: (k, n) the directions. names: one per direction ("input[0] (probe 1)").
        owner: (k,) the index of each direction's leaf in fn.inputs.
    """

    v: np.ndarray
    names: list[str]
    owner: np.ndarray


def probes(fn: Differentiable, rng: np.random.Generator) -> Probes:
    """PROBES random directions per input leaf, each supported on its leaf only.

    They are nudged so that finite differences along them step exactly (Note: Exact steps).
    """
    directions, names, owner = [], [], []
    for index, leaf in enumerate(fn.inputs):
        if not leaf.size:  # an empty input (noted by the adapter) has no direction
            continue
        for k in range(PROBES):
            d = np.zeros(fn.n)
            r = rng.standard_normal(leaf.size)
            d[leaf.offset : leaf.offset + leaf.size] = r / np.abs(r).max()
            directions.append(d)
            names.append(f"{leaf.name} (probe {k})")
            owner.append(index)
    v = exact_directions(fn.x0, np.array(directions), LARGEST_START)
    return Probes(v, names, np.array(owner, dtype=np.intp))


@dataclass(frozen=True)
class _Projections:
    """The entries of one route: J·v per output (forward), or ⟨u, J·v⟩ per probe (reverse).

    Attributes:
        route: which analytic derivative the entries check.
        probes: the directions v, (k, n); u: (k, m) the random cotangents.
        inputs, outputs: fn's leaves. width: entries per probe.
    """

    route: Route
    probes: Probes
    u: np.ndarray
    inputs: tuple[Leaf, ...]
    outputs: tuple[Leaf, ...]
    width: int

    @property
    def v(self) -> np.ndarray:
        return self.probes.v

    def numbers(self, e: Estimates, which: np.ndarray) -> Numbers:
        """The numeric side for probes `which`."""
        step = np.broadcast_to(e.step[:, None], (len(which), self.width)).copy()
        if self.route == "forward":
            return Numbers(e.value, e.error, e.noise, e.kink, step)
        w, size = self.u[which], np.abs(self.u[which])
        return Numbers(
            _project(w, e.value),
            _project(size, e.error),
            _project(size, e.noise),
            _project(size, np.abs(e.kink)),
            step,
        )

    def probe(self, flat: int) -> tuple[np.ndarray, np.ndarray]:
        """(direction, cotangent) of one entry, for the Taylor-remainder test."""
        row, col = divmod(flat, self.width)
        m = self.u.shape[1]
        return self.v[row], (self.u[row] if self.route == "reverse" else units(m, col, col + 1)[0])

    def name(self, flat: int) -> str:
        """The name of one entry: "input[0] (probe 1) -> output[2]"."""
        row, col = divmod(flat, self.width)
        if self.route == "forward":
            suffix = "" if self.width == 1 else f" -> {locate(self.outputs, col)}"
        else:
            suffix = f" -> {locate((Leaf('<u, J v>', (), 'float64', 0),), col)}"
        return f"{self.probes.names[row]}{suffix}"

    @property
    def where(self) -> EntryNames:
        return _probe_names(self.probes, self.inputs, self.name, self.width)

    def at(self, fn: Differentiable) -> AnalyticAt:
        """The entries of the probes in a mask at another point (Note: Measured analytic
        noise in `_rounding`)."""

        def probes_at(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
            entries = np.full(mask.shape, np.nan)
            rows = np.flatnonzero(mask.any(axis=1))
            if self.route == "reverse":
                projected = (scaled_vjps(fn, self.u[rows], x) * self.v[rows]).sum(axis=1)
                entries[rows] = projected[:, None]
            else:
                entries[rows] = fn.jvps(x, self.v[rows])
            return entries

        return probes_at

    def layout(self, level: np.ndarray) -> Layout:
        return Layout(
            numbers=self.numbers,
            contested=lambda mask: np.flatnonzero(mask.any(axis=1)),
            index=lambda which: which,
            probe=self.probe,
            directions=lambda which: self.v[which],
            noise_level=level,
            steps=lambda step, which: step[which, 0],
        )


def _probe_names(
    probes: Probes, inputs: tuple[Leaf, ...], name: Callable[[int], str], width: int
) -> EntryNames:
    """Entries of `width` per probe, named by `name`, each owned by its probe's leaf."""
    return EntryNames(
        name, lambda flat: probes.owner[flat // width], tuple(leaf.name for leaf in inputs)
    )


def _project(weight: np.ndarray, part: np.ndarray) -> np.ndarray:
    total: np.ndarray = (weight * part).sum(axis=1)
    return total[:, None]


def _analytic(
    ctx: Context,
    v: np.ndarray,
    u: np.ndarray,
    routes: tuple[Route, ...],
    notes: list[str],
    failed: list[CheckResult],
) -> tuple[dict[Route, np.ndarray], np.ndarray | None]:
    """Projections of the analytic derivative by each route, and the reverse rows Jᵀu."""
    fn = ctx.fn
    analytic: dict[Route, np.ndarray] = {}
    reverse_rows = None
    if "reverse" in routes:
        try:
            reverse_rows = scaled_vjps(fn, u)  # (k, n)
            with np.errstate(invalid="ignore"):  # inf - inf: NaN, judged "nonfinite"
                analytic["reverse"] = (reverse_rows * v).sum(axis=1)[:, None]
        except Unsupported as why:
            notes.append(f"reverse mode not checked: {why}")
            failed += [r for r in [ctx.missing("reverse", why)] if r]
        except UsageError:  # a hand-written derivative of the wrong shape: the user's to fix
            raise
        except Exception as error:  # the user's backward, at the user's point
            failed.append(ctx.backward_raised(error))
    if "forward" in routes:
        try:
            analytic["forward"] = fn.jvps(fn.x0, v)  # (k, m)
        except Unsupported as why:
            notes.append(f"forward mode not checked: {why}")
            failed += [r for r in [ctx.missing("forward", why)] if r]
    return analytic, reverse_rows


def _expected(analytic: dict[Route, np.ndarray], u: np.ndarray) -> tuple[np.ndarray, ...]:
    """What each route says J v is, per probe and output, for the ladders' early agreement
    (Note: Early agreement in `_fd.ladder`): forward mode's J v itself, and reverse mode's
    ⟨Jᵀu, v⟩ / u where there is one output (a projection of several cannot be split)."""
    expected = [analytic["forward"]] if "forward" in analytic else []
    if "reverse" in analytic and u.shape[1] == 1 and np.all(u != 0):
        expected.append(analytic["reverse"] / u)
    return tuple(expected)


def _reverse_scale(rows: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The terms each ⟨Jᵀu, v⟩ was computed from (Note: Error budget in `_compare`): Σ|g·v|,
    and at least the largest entry of Jᵀu on any input, as full mode takes the check's
    largest entry. A probe of a leaf whose derivative is 0 in exact arithmetic otherwise
    weighs the backward's rounding against itself (layer_norm's weight at a normalised
    shape of 1, where torch's backward returns 8e-16 beside O(1) bias derivatives)."""
    terms = np.abs(rows * v).sum(axis=1)
    largest = float(np.max(np.abs(rows), initial=0.0, where=np.isfinite(rows)))
    scale: np.ndarray = np.maximum(terms, largest)[:, None]
    return scale


def fast(
    ctx: Context, routes: tuple[Route, ...] | None = None
) -> tuple[list[CheckResult], list[str]]:
    """Check seeded random projections of the Jacobian; the results and notes.

    `routes` narrows the context's routes (full mode probes forward mode on large inputs).
    """
    fn = ctx.fn
    notes: list[str] = []
    routes = ctx.routes if routes is None else routes
    drawn = probes(fn, ctx.rng)
    v = drawn.v
    u = ctx.rng.standard_normal((len(v), fn.m))
    results: list[CheckResult] = []
    analytic, reverse_rows = _analytic(ctx, v, u, routes, notes, results)
    if not analytic:
        return results, notes

    spread = np.zeros((len(v), fn.m))
    slope = np.abs(next(iter(analytic.values()))).max(axis=1)
    if reverse_rows is not None:  # per probe, shared by its outputs
        finite_rows = np.nan_to_num(reverse_rows, nan=0.0, posinf=0.0, neginf=0.0)
        total = np.abs(finite_rows * v * fn.x0[None, :]).sum(axis=1)
        size = np.maximum(np.abs(u).max(axis=1), np.finfo(np.float64).tiny)
        spread[:] = np.nan_to_num(total / size, posinf=0.0)[:, None]
        slope = np.abs(reverse_rows * v).sum(axis=1)  # ⟨g, v⟩ can cancel; its terms cannot
    level = noise_level(ctx, spread)
    least = noise_aware_start(ctx, level, np.nan_to_num(slope, posinf=0.0))
    est = ctx.differences(v, level, least, _expected(analytic, u))
    spent = est.evaluations
    every = np.arange(len(v))
    resolution: np.ndarray | None = None
    for route, a in analytic.items():
        entries = _Projections(route, drawn, u, fn.inputs, fn.outputs, a.shape[1])
        reverse = route == "reverse" and reverse_rows is not None
        scale = None if reverse_rows is None or not reverse else _reverse_scale(reverse_rows, v)
        conditioning = total[:, None] if reverse else None
        judged, comparison = judge(
            ctx,
            route,
            a,
            entries.numbers(est, every),
            entries.layout(level),
            entries.where,
            spent,
            scale,
            conditioning,
            entries.at(fn),
        )
        if ctx.reports(route):
            results += judged
        if route == "reverse":  # the budget of <u, J v>: what the adjoint check compares
            resolution = comparison.allowed
        spent = 0
    if len(analytic) == 2 and reverse_rows is not None and "adjoint" in ctx.kinds:
        by_reverse = (reverse_rows * v).sum(axis=1)[:, None]
        by_forward = (u * analytic["forward"]).sum(axis=1)[:, None]
        scale = np.abs(reverse_rows * v).sum(axis=1) + np.abs(u * analytic["forward"]).sum(axis=1)
        results.append(
            adjoint(
                by_reverse,
                by_forward,
                _probe_names(drawn, fn.inputs, drawn.names.__getitem__, 1),
                ctx,
                scale[:, None],
                resolution=resolution,
            )
        )
    return results, notes
