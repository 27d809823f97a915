"""Deciding one check: analytic entries against their numerical estimates, and the wording.

Both ways of checking an order of derivatives (`_full`: every entry, `_fast`: projections) end
here. `judge` compares, gives contested entries a thorough second estimate, asks the Taylor
remainder for a second opinion on borderline ones, and names a likely cause; `adjoint`
compares reverse with forward mode, which needs no finite differences at all.

Note: Cotangent scaling
    Reverse-mode cotangents are multiplied by COTANGENT_SCALE (not a power of two) and the
    result divided by it again. A correct backward is linear in its incoming gradient and
    does not notice; a backward that ignores grad_output (a real, recurring bug) comes back
    off by exactly that factor, even for scalar losses where the cotangent would otherwise
    be 1 and the bug invisible.

Note: A second grid of steps
    Every ladder, the thorough ones included, steps on powers of two, so the thorough starts
    often merge into bitwise the same estimate and "confirm" each other. Where f's rounding is
    heavy-tailed (the SVD behind linalg.pinv: one sample 40 sigma off its measured noise), one
    unlucky sample then yields an estimate whose claimed error is several times too small,
    and a correct gradient fails by 1-2x its budget. A mismatch within SECOND_GRID of its
    budget is therefore estimated once more on steps 1.5·2^k, which share no sample with the
    first grid; where the two independent estimates disagree beyond their errors, at least
    one error claim is wrong and the entry's bound grows to cover both. Where they agree,
    the bound is still at least their gap: pinv's estimates on the two grids were 1.6e-13
    to 1.6e-12 apart (within twice their claims) around a first-grid estimate off by up
    to 6x its claimed error, and two independent estimates that far apart say that one of
    them is off by half as much. Honest noise keeps independent estimates far closer than
    their claims (1e8 + Σ sin x: 1e-8 apart, claims of 2e-7), so an injected error is caught
    as before (power suite unchanged). What neither grid can see alone, rounding that is
    smooth over the step scale and offsets both alike, `select` meets by validating vetoes
    (Note: Vetoes at validated precision in `_fd.estimate`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from ._compare import Comparison, EntryNames, Numbers, compare, summarise
from ._diagnosis import likely_cause
from ._differentiable import Differentiable, Leaf, Unsupported, locate
from ._fd import (
    DEFAULT,
    NOISE_SIGMAS,
    OFF_GRID,
    Coordinates,
    Directions,
    Estimates,
    averaged,
    directional,
    fixed_step,
    round_off,
    thorough,
)
from ._results import CheckResult, Kind, Tolerance
from ._rounding import AnalyticAt, analytic_noise
from ._taylor import review

COTANGENT_SCALE = 1.7


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


Route = Literal["reverse", "forward"]
"""Which derivative of the framework a comparison checks: vector-Jacobian or Jacobian-vector."""


@dataclass(frozen=True)
class Context:
    """Everything one order of checks needs.

    Attributes:
        fn: the analytic side. source: the numeric side (fn, or the surrogate).
        f0, s0: their values at the point. plain: fn itself when a surrogate is declared,
        to tell an override that is not in effect from a wrong one. sigma: the measured
        round-off noise of source's values. routes, kinds: what `checks=` asked for; a route
        is computed when its own check or the adjoint check needs it.
    """

    fn: Differentiable
    source: Differentiable
    f0: np.ndarray
    s0: np.ndarray
    tolerance: Tolerance
    rng: np.random.Generator
    order: int
    surrogate: bool
    plain: Differentiable | None
    sigma: np.ndarray  # measured round-off of source's values, per output (Note: Measured noise)
    routes: tuple[Route, ...] = ("reverse", "forward")  # the analytic routes to compute
    kinds: tuple[str, ...] = ("vjp", "jvp", "adjoint")  # the checks to report
    precision: float = 0.0  # the effective unit round-off the measured noise shows, if coarser
    step: float | None = None  # a fixed step the user asked for instead of the adaptive ladder
    explicit: bool = False  # the kinds were named by the user (checks=): each must run

    def missing(self, route: Route, why: Unsupported) -> CheckResult | None:
        """A route the user asked for by name that the function cannot give: a failure
        (torch's check_forward_ad=True fails the same way); otherwise None (a note suffices)."""
        if not (self.explicit and self.reports(route)):
            return None
        kind: Kind = "vjp" if route == "reverse" else "jvp"
        mode = "reverse" if route == "reverse" else "forward"
        message = f"{mode} mode was asked for (checks={self.kinds!r}) but is not available: {why}"
        return CheckResult(kind, "fail", message, order=self.order, cause=message)

    def backward_raised(self, error: Exception) -> CheckResult:
        """Reverse mode raised at the user's own point on the float64 copy.

        A fail when the user's own dtype raises too, or is float64 already: their gradient
        cannot be computed. Inconclusive when only the float64 copy cannot run it (torch's
        float64 CPU conv_transpose2d backward refuses the permuted kernel Keras passes).
        """
        what = f"{type(error).__name__}: {_first_line(error)}"
        try:
            own = self.fn.native_vjp(np.ones(self.fn.m))
        except Exception:  # the user's own gradient raises as well
            own = None
        if own is None:
            message = f"the backward raised at the point ({what})"
            return CheckResult("vjp", "fail", message, order=self.order, cause=message)
        message = (
            f"reverse mode not checked: the backward raised on the float64 copy ({what}) but "
            "not in the user's dtype, so the derivatives could not be compared"
        )
        return CheckResult("vjp", "inconclusive", message, order=self.order)

    def differences(
        self,
        directions: Directions,
        level: np.ndarray,
        least: np.ndarray,
        expected: tuple[np.ndarray, ...] = (),
    ) -> Estimates:
        """The first numerical estimate along directions: adaptive, or at the user's step.

        `expected`: the analytic values along the directions (Note: Early agreement in
        `_fd.ladder`); never for a surrogate, whose analytic side is not its derivative.
        """
        if self.step is not None:
            return fixed_step(self.source, self.s0, directions, self.step, level)
        return directional(
            self.source, self.s0, directions, level, least, () if self.surrogate else expected
        )

    @property
    def eps_a(self) -> float:
        """Unit round-off of the analytic side: its dtype's, or the precision f computes in."""
        return max(self.fn.analytic_eps, self.precision)

    def reports(self, route: Route) -> bool:
        """Whether the comparison of `route` with differences is a check the user asked for."""
        return ("vjp" if route == "reverse" else "jvp") in self.kinds


@dataclass(frozen=True)
class Layout:
    """How one check's entries relate to the directions the engine differentiates along.

    Attributes:
        numbers: turns estimates along directions[which] into entries (rows or columns).
        contested: the directions behind a mask of entries.
        index: where the entries of those directions sit, for `Numbers.assign`.
        probe: (direction, cotangent) of one flat entry, for the Taylor-remainder test.
        directions: rows of the directions (coordinate directions are built on demand).
        noise_level: Note: Noise level in `_fd.ladder`, per direction.
        steps: the step behind each of the directions `which` (d,), from the entries' steps.
    """

    numbers: Callable[[Estimates, np.ndarray], Numbers]
    contested: Callable[[np.ndarray], np.ndarray]
    index: Callable[[np.ndarray], Any]
    probe: Callable[[int], tuple[np.ndarray, np.ndarray]]
    directions: Callable[[np.ndarray], Directions]
    noise_level: np.ndarray
    steps: Callable[[np.ndarray, np.ndarray], np.ndarray]


CURVE_STEPS = tuple(2.0**k for k in range(-24, 7, 2))  # relative to the step used


def v_curve(
    ctx: Context, direction: np.ndarray, cotangent: np.ndarray, step: float
) -> tuple[tuple[float, float], ...]:
    """The central-difference estimate of one entry at steps around `step`: the "V curve"
    whose falling branch is truncation and rising branch round-off, for reports to plot."""
    if not step > 0:
        return ()
    steps = step * np.array(CURVE_STEPS)
    points = np.concatenate(
        [ctx.source.x0 + h * sign * direction for h in steps for sign in (1.0, -1.0)]
    ).reshape(-1, ctx.source.n)
    values = ctx.source.values(points).reshape(len(steps), 2, -1) @ cotangent
    estimates = (values[:, 0] - values[:, 1]) / (2 * steps)
    return tuple(
        (float(h), float(e)) for h, e in zip(steps, estimates, strict=True) if np.isfinite(e)
    )


def scaled_vjps(fn: Differentiable, us: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
    """Jᵀu at x (by default the point) for each row of us, through scaled cotangents (Note:
    Cotangent scaling).

    Where the scaled cotangent would manufacture an overflow (a gradient near the float64
    maximum times 1.7), the row is taken with the plain cotangent instead: the checker must
    never turn a finite gradient into inf.
    """
    at = fn.x0 if x is None else x
    with np.errstate(over="ignore", invalid="ignore"):
        rows: np.ndarray = fn.vjps(at, COTANGENT_SCALE * us) / COTANGENT_SCALE
    overflowed = ~np.isfinite(rows).all(axis=1)
    if overflowed.any():
        plain = fn.vjps(at, us[overflowed])
        rows[overflowed] = np.where(np.isfinite(plain), plain, rows[overflowed])
    return rows


def kind_of(ctx: Context, route: Route) -> Kind:
    """The kind a comparison is reported as."""
    if ctx.order > 1:
        return "hvp"
    if ctx.surrogate:
        return "surrogate"
    return "vjp" if route == "reverse" else "jvp"


def noise_aware_start(ctx: Context, noise_level: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """The smallest first step per direction that keeps the ladder above round-off.

    With three rows h, h/2, h/4 of a central difference, round-off in the last row is about
    4·(noise of one value)/h, and extrapolation amplifies it up to about 2x; asking for
    `step_target` of the derivative's size there gives h >= 8·noise/(step_target·|slope|).
    `slope` (d,) is the analytic derivative's size along each direction; where it is 0 (a
    missing gradient) there is no floor.
    """
    per_value = round_off(DEFAULT, ctx.source.eps, np.abs(ctx.s0)[None, :], noise_level)
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = 8 * per_value.max(axis=1) / (DEFAULT.step_target * slope)
    least: np.ndarray = np.where(np.isfinite(floor) & (slope > 0), floor, 0.0)
    return least


def noise_level(ctx: Context, sensitivity: np.ndarray) -> np.ndarray:
    """Round-off of one value of f beyond eps·|f| (Note: Noise level in `_fd.ladder`).

    `sensitivity` (d, m) is Σ_i |x_i·d_i·∂_i f| from the analytic side: argument rounding.
    The measured noise counts NOISE_SIGMAS standard deviations.
    """
    level: np.ndarray = (
        DEFAULT.noise_ulps * ctx.source.eps * sensitivity + NOISE_SIGMAS * ctx.sigma[None, :]
    )
    return level


def entry_name(inputs: tuple[Leaf, ...], outputs: tuple[Leaf, ...], n: int) -> EntryNames:
    """Names flat entries of an (m, n) Jacobian: "input[0][2] -> output[1]"."""
    scalar_out = len(outputs) == 1 and outputs[0].size == 1
    starts = np.array([leaf.offset for leaf in inputs])

    def where(flat: int) -> str:
        row, col = divmod(flat, n)
        name = locate(inputs, col)
        return name if scalar_out else f"{name} -> {locate(outputs, row)}"

    def owner(flat: np.ndarray) -> np.ndarray:
        index: np.ndarray = np.searchsorted(starts, flat % n, side="right") - 1
        return index

    return EntryNames(where, owner, tuple(leaf.name for leaf in inputs))


def units(n: int, start: int, stop: int) -> np.ndarray:
    """Unit vectors e_start … e_stop-1 of R^n as dense rows (for the analytic side)."""
    return Coordinates(np.arange(start, min(stop, n)), n).dense()


SECOND_GRID = 100.0
"""A mismatch within this factor of its budget gets a second, independent estimate."""
AVERAGED_DIRECTIONS = 64  # the most directions one comparison averages (2·SIDE samples each)
THOROUGH_LOOK, GRID_LOOK, AVERAGE_LOOK = 1, 2, 4  # the second looks an entry can have had


def _float64(ctx: Context) -> bool:
    """Whether f computes in float64: rounding that averaging can shrink is not a coarser
    precision that every sample shares (Note: Averaged round-off in `_fd.average`)."""
    return ctx.source.eps <= float(np.finfo(np.float64).eps) and ctx.precision == 0


_NOT_IN_EFFECT = (
    "the override is NOT in effect: the analytic gradient equals the derivative of "
    "fn itself, not the surrogate's (the custom rule is bypassed)"
)


def judge(
    ctx: Context,
    route: Route,
    analytic: np.ndarray,
    numbers: Numbers,
    layout: Layout,
    where: EntryNames,
    spent: int,
    scale: np.ndarray | None = None,
    conditioning: np.ndarray | None = None,
    recompute: AnalyticAt | None = None,
) -> tuple[list[CheckResult], Comparison]:
    """Compare, re-estimate contested entries, ask for second opinions, and word the result.

    `scale` and `conditioning`: see `compare`. `recompute` evaluates the analytic entries at
    another point, to measure their round-off where the modelled budget fails them
    (Note: Measured analytic noise in `_rounding`).
    """
    eps_a = ctx.eps_a

    def compared(noise: np.ndarray | None = None) -> Comparison:
        return compare(
            analytic,
            numbers,
            eps_a=eps_a,
            tolerance=ctx.tolerance,
            scale=scale,
            conditioning=conditioning,
            analytic_noise=noise,
        )

    result = compared()
    contested = numbers.unlooked(result.contested, THOROUGH_LOOK)
    if contested.any() and ctx.step is None:  # a fixed step is the user's to keep
        which = layout.contested(contested)
        second = thorough(ctx.source, ctx.s0, layout.directions(which), layout.noise_level[which])
        spent += second.evaluations
        numbers.assign(layout.index(which), layout.numbers(second, which))
        numbers.looked(layout.index(which), THOROUGH_LOOK)
        result = compared()
    near = result.mismatch & (np.abs(analytic - numbers.value) <= SECOND_GRID * result.allowed)
    near = numbers.unlooked(near, GRID_LOOK)
    if near.any() and ctx.step is None:  # Note: A second grid of steps
        which = layout.contested(near)
        other = thorough(
            ctx.source, ctx.s0, layout.directions(which), layout.noise_level[which], OFF_GRID
        )
        spent += other.evaluations
        numbers.reconcile(layout.index(which), layout.numbers(other, which))
        numbers.looked(layout.index(which), GRID_LOOK)
        result = compared()
    coarse = None if result.coarse is None else numbers.unlooked(result.coarse, AVERAGE_LOOK)
    if coarse is not None and coarse.any() and ctx.step is None and _float64(ctx):
        which = layout.contested(coarse)[:AVERAGED_DIRECTIONS]  # Note: Averaged round-off
        steps = layout.steps(numbers.step, which)
        found = averaged(ctx.source, layout.directions(which), steps)
        spent += found.evaluations
        numbers.tighten(layout.index(which), layout.numbers(found, which))
        numbers.looked(layout.index(which), AVERAGE_LOOK)
        result = compared()
    if result.mismatch.any() and recompute is not None:
        result = compared(analytic_noise(ctx.fn.x0, recompute, result.mismatch))
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
    cause = (
        _cause(ctx, route, analytic, numbers, layout, result) if result.verdict == "fail" else None
    )
    summary = summarise(
        kind_of(ctx, route),
        result,
        analytic,
        numbers,
        where,
        tolerance=ctx.tolerance,
        order=ctx.order,
        evaluations=spent,
        cause=cause,
        curve=lambda flat, step: v_curve(ctx, *layout.probe(flat), step),
        route=_route_label(ctx, route),
    )
    return [summary] + ([opinion] if opinion is not None else []), result


def _route_label(ctx: Context, route: Route) -> str | None:
    """The route a result names: where one kind has both (surrogate, hvp)."""
    return route if ctx.order > 1 or ctx.surrogate else None


def judged_alike(
    ctx: Context, route: Route, analytic: np.ndarray, earlier: tuple[np.ndarray, list[CheckResult]]
) -> list[CheckResult] | None:
    """An earlier route's judgement, for `route`, where its analytic entries are bitwise the
    same (forward and reverse mode usually are): `judge` would compare the same numbers with
    the same entries, and no evaluation is spent on it. Only a clean pass is taken over (one
    result, no second opinion): a finding has route-specific parts (the analytic noise is
    measured by its own route, the likely cause reads the route), so it is judged anew. None
    where it cannot be reused.
    """
    entries, results = earlier
    if len(results) != 1 or results[0].verdict != "pass":
        return None
    if not np.array_equal(analytic, entries):
        return None
    relabelled = replace(
        results[0], kind=kind_of(ctx, route), route=_route_label(ctx, route), evaluations=0
    )
    return [relabelled]


def _cause(
    ctx: Context,
    route: Route,
    analytic: np.ndarray,
    numbers: Numbers,
    layout: Layout,
    result: Comparison,
) -> str | None:
    """The likely cause of a failure, and whether a declared override is in effect at all."""
    cause = None
    if route == "reverse" or analytic.shape[1] == ctx.fn.n:
        cause = likely_cause(
            analytic,
            numbers.value,
            result.mismatch,
            ctx.fn.inputs,
            outputs=ctx.fn.outputs,
            cotangent_scale=COTANGENT_SCALE if route == "reverse" else 1.0,
        )
    if ctx.surrogate and ctx.plain is not None:
        contested = layout.contested(result.contested)
        if _plain_agrees(ctx, analytic, layout, contested).verdict == "pass":
            # Bypassed, unless the override visibly acts on the other entries: then the
            # failing ones are where the surrogate changes more than the override does.
            others = np.setdiff1d(np.arange(len(layout.noise_level)), contested)
            acting = others.size and _plain_agrees(ctx, analytic, layout, others).mismatch.any()
            cause = _BEYOND_OVERRIDE if acting else _NOT_IN_EFFECT
    return cause


_BEYOND_OVERRIDE = (
    "the override is in effect where it applies, but the failing entries are ones where the "
    "surrogate differs from fn beyond the override (e.g. parameters after a straight-through "
    "estimator): check the override with wrt= the inputs it replaces"
)


def _plain_agrees(
    ctx: Context, analytic: np.ndarray, layout: Layout, which: np.ndarray
) -> Comparison:
    """The analytic entries of directions `which` against differences of fn itself."""
    assert ctx.plain is not None
    own = directional(ctx.plain, ctx.f0, layout.directions(which), layout.noise_level[which])
    return compare(
        analytic[layout.index(which)],
        layout.numbers(own, which),
        eps_a=ctx.eps_a,
        tolerance=ctx.tolerance,
    )


def adjoint(
    reverse: np.ndarray,
    forward: np.ndarray,
    where: EntryNames,
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
    result = compare(reverse, other, eps_a=ctx.eps_a, tolerance=ctx.tolerance, scale=scale)
    # Both routes are exact up to rounding: only entries the differences could not decide
    # leave a disagreement unresolved (the resolution of differences is not this check's).
    undecided = np.zeros_like(result.mismatch) if undecidable is None else undecidable
    result = replace(
        result,
        mismatch=result.mismatch & ~undecided,
        unresolved=result.mismatch & undecided,
    )
    cause = (
        (
            "forward and reverse mode disagree by more than rounding: one of the two rules is "
            "wrong (a custom jvp/vjp, or the framework's own rule for an op)"
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
