"""Analytic against numeric, entry by entry, with an error budget: the verdict of one check.

Note: Error budget
    An entry agrees when

        |analytic - numeric| <= safety·(bound - noise + rounding) + noise_safety·noise
                                + atol + rtol·|numeric|

    where `bound` is the finite-difference engine's error estimate for that entry, `noise`
    the part of it set by the round-off model rather than by the tableau (see `_fd.ladder`), and
    `rounding` models the round-off of the analytic value itself: ROUNDING_ULPS·eps_a·|a|
    plus SCALE_ULPS·eps_a times the scale of the terms it was computed from, by default the
    largest analytic entry of the check (an entry computed by cancellation cannot be more
    accurate than the terms it cancelled, and framework derivative code cancels terms larger
    than any Jacobian entry: JAX's tanh-approximated gelu returns 2.5e-13 for a derivative
    that is 1e-19, 45 ulps of a Jacobian scale of 5). eps_a is the unit round-off of the
    dtype the analytic derivative came back in. `safety` (SAFETY) covers the fact that the
    tableau's error estimates are estimates. The round-off model is a bound that the tableau's
    own realized noise stayed under, so it carries the smaller NOISE_SAFETY: that is what lets
    an offset of 1e8 keep δ = 1e-6 visible. User rtol/atol are added explicitly and recorded.
    Measured on the generated families, no correct gradient needed more than 1.6 of the
    safety of 10 (see tests/test_power.py).

    The same numbers decide which entries were resolved at all. An entry is settled when a wrong
    value of its own size would have shown (its budget is below half its magnitude), when its
    budget is negligible beside the check's scale (NEGLIGIBLE of the largest entry: a tiny entry
    of a large gradient; NEGLIGIBLE_ULPS of the precision for code that computes in float32,
    where smaller entries are beyond what its values can show), when the whole derivative is
    identically zero and the numbers agree, or when both sides are exactly 0 (the function did
    not change at all along that direction). Any other entry is unresolved — cos at x = 1e-8
    with a budget of 1e-6 around a derivative of 1e-8, a NaN trap's numeric 18334 ± 5618 — and
    the checker retries it with a thorough estimate; what stays unresolved makes the check
    "inconclusive", never a "pass", whatever the other entries say.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._results import CheckResult, Evidence, Kind, Step, Tolerance, Verdict

SAFETY = 10.0
NOISE_SAFETY = 3.0
ROUNDING_ULPS = 8.0
SCALE_ULPS = 64.0
WORST_SHOWN = 5
CONDITIONING_ULPS = 4.0  # outside the safety factor: a bound on rounding, not an estimate
NEGLIGIBLE = 1e-6  # an entry's budget below this fraction of the check's scale settles it
NEGLIGIBLE_ULPS = 1e4  # … or below this many ulps of the analytic side's precision (float32)
ROUND_OFF_REVIEW = 8.0  # a round-off limited entry within this factor of its budget: look again
COARSE = 1e-8  # a round-off limited budget above this fraction of the entry (or the check's
# scale, if larger) is worth averaging …
AVERAGE_REACH = 16.0  # … where its difference is within this factor of the budget (a cost
# bound: a thorough look and 2·SIDE samples a direction; at 64, 1e8 + Σ sin x cost 4.5x more)


@dataclass(frozen=True, slots=True)
class EntryNames:
    """How a check names its flat entries: one at a time for the evidence ("input[0][2] ->
    output[1]"), and all at once by the input or parameter each belongs to, for the report's
    histogram (naming every entry as a string took 60 % of a 100×100 full check).

    Attributes:
        entry: the name of one flat entry.
        leaf: flat entries -> the index, into `leaves`, of the input or parameter of each.
        leaves: the names of the inputs or parameters.
    """

    entry: Callable[[int], str]
    leaf: Callable[[np.ndarray], np.ndarray]
    leaves: tuple[str, ...]

    def __call__(self, flat: int) -> str:
        return self.entry(flat)


@dataclass(slots=True)
class Numbers:
    """The numeric side of a comparison: one array per field, all of the comparison's shape.

    Attributes:
        value: the estimates. bound: their error estimates. noise: the round-off part of
        bound. kink: jumps in one-sided slopes (0 where smooth). step: the steps used.
        looks: per entry, the second looks it has had (a bit per kind of look), so that a
        second comparison against the same numbers (forward after reverse mode) does not
        repeat them; None until the first.
    """

    value: np.ndarray
    bound: np.ndarray
    noise: np.ndarray
    kink: np.ndarray
    step: np.ndarray
    looks: np.ndarray | None = None

    def unlooked(self, mask: np.ndarray, look: int) -> np.ndarray:
        """The entries of `mask` that have not had `look` yet."""
        if self.looks is None:
            return mask
        fresh: np.ndarray = mask & ((self.looks & look) == 0)
        return fresh

    def looked(self, index: Any, look: int) -> None:
        """Record that the entries at `index` had `look`."""
        if self.looks is None:
            self.looks = np.zeros(self.value.shape, dtype=np.uint8)
        self.looks[index] |= look

    def assign(self, index: Any, other: Numbers) -> None:
        """Replace the entries at `index` with `other`'s (a re-estimate of them)."""
        for name in ("value", "bound", "noise", "kink", "step"):
            getattr(self, name)[index] = getattr(other, name)

    def reconcile(self, index: Any, other: Numbers) -> None:
        """Weigh an independent estimate of the entries at `index` (Note: A second grid of
        steps in `_judge`): where the two disagree beyond their errors, at least one error is
        understated, so the bound grows to cover the other estimate's whole interval; where
        they agree, it is at least their gap."""
        value, bound = self.value[index], self.bound[index]
        with np.errstate(invalid="ignore"):
            gap = np.abs(value - other.value)
            apart = gap > 2 * (bound + other.bound)
            widened = gap + other.bound
        grow = apart & np.isfinite(widened)
        # Where they agree, either may be the one that is off by their gap: never claim less.
        seen = np.where(np.isfinite(gap), gap, 0.0)
        self.bound[index] = np.where(grow, np.maximum(bound, widened), np.maximum(bound, seen))
        self.noise[index] = np.where(grow, 0.0, self.noise[index])

    def tighten(self, index: Any, other: Numbers) -> None:
        """Take an independent estimate of the entries at `index` where it is tighter and
        the two agree within their errors (Note: Averaged round-off in `_fd.average`); where
        they do not, the averaged fit is the newcomer whose assumptions (no kink, no misfit
        within its window) failed, and the ladders' numbers stand."""
        with np.errstate(invalid="ignore"):
            gap = np.abs(self.value[index] - other.value)
            tighter = (gap <= self.bound[index] + other.bound) & (other.bound < self.bound[index])
        for name in ("value", "bound", "noise", "kink", "step"):
            mine = getattr(self, name)
            mine[index] = np.where(tighter, getattr(other, name), mine[index])


@dataclass(frozen=True, slots=True)
class Comparison:
    """Entry-wise outcome of one comparison, before it is worded as a CheckResult."""

    allowed: np.ndarray
    mismatch: np.ndarray
    nonfinite: np.ndarray
    kinked: np.ndarray
    unresolved: np.ndarray
    limited: np.ndarray | None = None  # round-off limited and using much of their budget
    rounding: np.ndarray | None = None  # the analytic side's share of `allowed`
    noisy: np.ndarray | None = None  # unresolved because the analytic side is rounding noise
    coarse: np.ndarray | None = None  # round-off limits them to a coarse budget (averageable)

    @property
    def contested(self) -> np.ndarray:
        """Entries worth a second, thorough estimate: mismatched, unresolved, or limited by
        round-off while using much of their budget or to a coarse one (a large offset such
        as 1e8 + …, where the thorough ladders' larger steps tighten the bound, and give the
        averaging its window: Note: Averaged round-off in `_fd.average`)."""
        either: np.ndarray = self.mismatch | self.unresolved
        for more in (self.limited, self.coarse):
            if more is not None:
                either = either | more
        return either

    @property
    def verdict(self) -> Verdict:
        if self.nonfinite.any():
            return "nonfinite"
        if self.mismatch.any():
            return "fail"
        if self.kinked.any():
            return "nondifferentiable"
        if self.unresolved.any():
            return "inconclusive"
        return "pass"


def compare(
    analytic: np.ndarray,
    numbers: Numbers,
    *,
    eps_a: float,
    tolerance: Tolerance,
    scale: np.ndarray | None = None,
    conditioning: np.ndarray | None = None,
    analytic_noise: np.ndarray | None = None,
) -> Comparison:
    """Judge each entry against the error budget (Note: Error budget).

    `scale` gives, per entry, the magnitude of the terms an analytic value was summed from
    (for projections ⟨g, v⟩: Σ|g·v|); by default the largest analytic entry of the check.
    `conditioning` gives, per entry, Σ|x_j·∂_j| behind it: a derivative computed from
    arguments of size |x| cannot be more accurate than eps·|x| relative (log-space code at
    |x| = 1e4 returns 1 + 6e-13 for an exact 1), so CONDITIONING_ULPS of it join the budget.
    """
    numeric, bound, noise = numbers.value, numbers.bound, numbers.noise
    a_finite = np.isfinite(analytic)
    if scale is None:
        scale = np.asarray(float(np.abs(analytic[a_finite]).max(initial=0.0)))
    rounding = ROUNDING_ULPS * eps_a * np.abs(analytic) + SCALE_ULPS * eps_a * scale
    if conditioning is not None:
        rounding = rounding + CONDITIONING_ULPS * eps_a * conditioning / tolerance.safety
    if analytic_noise is not None:
        rounding = rounding + analytic_noise
    with np.errstate(invalid="ignore", over="ignore"):
        allowed = (
            tolerance.safety * (np.maximum(bound - noise, 0.0) + rounding)
            + tolerance.noise_safety * noise
            + tolerance.atol
            + tolerance.rtol * np.abs(numeric)
        )
        resolved = np.isfinite(numeric) & np.isfinite(bound)
        # A jump or kink outranks a NaN that one route of autodiff returns there: the NaN is
        # evidence of the kink, not a separate finding.
        kinked = numbers.kink != 0
        nonfinite = ~a_finite & ~kinked
        mismatch = a_finite & resolved & ~kinked & (np.abs(analytic - numeric) > allowed)
        magnitude = np.maximum(np.abs(analytic), np.abs(numeric))
        # What the numbers resolve, without the slack the user granted with atol/rtol.
        own = allowed - tolerance.atol - tolerance.rtol * np.abs(numeric)
        negligible = max(NEGLIGIBLE, NEGLIGIBLE_ULPS * eps_a) * scale
        settled = resolved & (
            (own < 0.5 * magnitude)  # a wrong value of this size would have been seen
            | (own <= negligible)  # too small to matter beside the largest entries
            | ((scale == 0) & (magnitude <= own))  # an identically zero derivative
            | (magnitude == 0)  # f did not change at all, and the analytic side says so
        )
        unresolved = a_finite & ~kinked & ~mismatch & ~settled
        limited = (
            settled
            & ~mismatch
            & (noise >= 0.5 * bound)
            & (np.abs(analytic - numeric) > allowed / ROUND_OFF_REVIEW)
        )
        noisy = None
        if analytic_noise is not None:  # unresolved by the measured noise, not the numbers
            noisy = unresolved & (tolerance.safety * analytic_noise >= 0.5 * own)
        # Note: Averaged round-off in `_fd.average`: the numbers' round-off sets the budget,
        # the budget is coarse, and a tighter one could tell the difference.
        coarse = (
            settled
            & ~mismatch
            & ~kinked
            & (noise >= 0.5 * bound)
            & (tolerance.noise_safety * noise >= 0.5 * own)
            & (own > COARSE * np.maximum(magnitude, scale))
            & (np.abs(analytic - numeric) > own / AVERAGE_REACH)
        )
        return Comparison(
            allowed,
            mismatch,
            nonfinite,
            kinked,
            unresolved,
            limited,
            tolerance.safety * rounding,
            noisy,
            coarse,
        )


def summarise(
    kind: Kind,
    result: Comparison,
    analytic: np.ndarray,
    numbers: Numbers,
    where: EntryNames,
    *,
    tolerance: Tolerance,
    order: int = 1,
    evaluations: int = 0,
    cause: str | None = None,
    curve: Callable[[int, float], tuple[tuple[float, float], ...]] | None = None,
    route: str | None = None,
) -> CheckResult:
    """Word a comparison as a CheckResult with the worst entries as evidence.

    `curve(flat, step)` gives the numeric estimate of one entry at steps around `step` (the
    V curve a report can plot); it is asked for the evidence of findings only.
    """
    verdict = result.verdict
    flat_b, flat_steps = numbers.bound.ravel(), numbers.step.ravel()
    worst, ratio = _evidence(
        verdict, result, analytic, numbers, where, curve if verdict != "pass" else None
    )
    bounds = flat_b[np.isfinite(flat_b)]
    step = Step(
        median(flat_steps) if flat_steps.size else 0.0,
        float(bounds.max()) if bounds.size == flat_b.size and bounds.size else None,
    )
    return CheckResult(
        kind,
        verdict,
        _message(verdict, result, analytic.size, worst, ratio, numbers.kink),
        tolerance,
        step,
        worst,
        order,
        analytic.size,
        evaluations,
        cause if verdict == "fail" else None,
        histogram=_histogram(result, analytic, numbers, where),
        route=route,
    )


def median(values: np.ndarray) -> float:
    """np.median of a flat array of numbers without NaN, by one partial sort (np.median's
    generic path costs several times that, and every check's summary takes one)."""
    k = values.size // 2
    if values.size % 2:
        return float(np.partition(values, k)[k])
    low, high = np.partition(values, (k - 1, k))[k - 1 : k + 1]
    return float((low + high) / 2)


HISTOGRAM_EDGES = tuple(float(e) for e in np.arange(-16.0, 4.5, 0.5))
_EDGES = np.array(HISTOGRAM_EDGES)
_EDGES.flags.writeable = False
HISTOGRAM_ENTRIES = 20_000  # checks with more entries carry no histogram (naming costs)


def _histogram(
    result: Comparison, analytic: np.ndarray, numbers: Numbers, where: EntryNames
) -> dict[str, object] | None:
    """log10(|analytic - numeric| / tolerance) of every resolved entry, counted per input or
    parameter in half-decade bins: where a report's histogram comes from."""
    if analytic.size > HISTOGRAM_ENTRIES:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.abs(analytic - numbers.value).ravel() / result.allowed.ravel()
    shown = np.flatnonzero(np.isfinite(ratio) & (ratio > 0))
    if not shown.size:
        return None
    edges = _EDGES
    bins = len(edges) - 1
    # np.histogram's bins, the last one closed, by one searchsorted for all leaves at once.
    # (np.clip's checks cost more than these two comparisons of finite logarithms.)
    logs = np.minimum(np.maximum(np.log10(ratio[shown]), edges[0]), edges[-1])
    which = np.minimum(np.searchsorted(edges, logs, side="right") - 1, bins - 1)
    leaf = where.leaf(shown)
    counts = np.bincount(leaf * bins + which, minlength=len(where.leaves) * bins)
    counts = counts.reshape(-1, bins)
    return {
        "edges": list(HISTOGRAM_EDGES),
        "counts": {where.leaves[k]: counts[k].tolist() for k in np.flatnonzero(counts.sum(axis=1))},
    }


def _focus(verdict: Verdict, result: Comparison) -> np.ndarray | None:
    """The entries a finding with this verdict is about (None for a pass)."""
    return {
        "nonfinite": result.nonfinite,
        "fail": result.mismatch,
        "nondifferentiable": result.kinked,
        "inconclusive": result.unresolved,
    }.get(verdict)


def _evidence(
    verdict: Verdict,
    result: Comparison,
    analytic: np.ndarray,
    numbers: Numbers,
    where: Callable[[int], str],
    curve: Callable[[int, float], tuple[tuple[float, float], ...]] | None = None,
) -> tuple[tuple[Evidence, ...], np.ndarray]:
    """The worst entries first (a finding's evidence is its offending entries only), and
    |diff|/tol per entry, ranked so that the entries a finding is about come first."""
    flat_a, flat_n, flat_b = analytic.ravel(), numbers.value.ravel(), numbers.bound.ravel()
    allowed, flat_steps = result.allowed.ravel(), numbers.step.ravel()
    focus = _focus(verdict, result)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.abs(flat_a - flat_n) / allowed
    ratio = np.where(np.isnan(ratio), np.inf, ratio)  # |diff| / tol is never negative
    if focus is not None:
        ratio = (
            np.where(focus.ravel(), np.inf, ratio)
            if verdict != "fail"
            else np.where(focus.ravel(), ratio, -1.0)
        )
    order_idx = np.argsort(-ratio, kind="stable")[:WORST_SHOWN]
    if focus is not None:
        order_idx = order_idx[focus.ravel()[order_idx]]
    worst = tuple(
        Evidence(
            where(int(i)),
            float(flat_a[i]),
            float(flat_n[i]),
            float(flat_b[i]),
            float(allowed[i]),
            float(flat_steps[i]),
            () if curve is None else curve(int(i), float(flat_steps[i])),
        )
        for i in order_idx
    )
    return worst, ratio[order_idx] if verdict == "fail" else ratio


def _message(
    verdict: Verdict,
    result: Comparison,
    total: int,
    worst: tuple[Evidence, ...],
    ratio: np.ndarray,
    kink: np.ndarray,
) -> str:
    """One line: how many entries, how far off, and where first."""
    top = worst[0] if worst else None
    at = top.where if top else "?"
    if verdict == "pass":
        finite_ratio = ratio[np.isfinite(ratio) & (ratio >= 0)]
        return (
            f"{total} entries agree; worst |diff|/tol = {float(finite_ratio.max(initial=0.0)):.2g}"
        )
    if verdict == "fail":
        worst_ratio = float(ratio[0]) if ratio.size else float("nan")
        if worst_ratio <= 1:  # only the Taylor remainder could decide these entries
            return (
                f"{int(result.mismatch.sum())} of {total} entries are wrong by the "
                f"Taylor-remainder test (finite differences could not resolve them), at {at}"
            )
        return (
            f"{int(result.mismatch.sum())} of {total} entries differ, the worst by "
            f"{worst_ratio:.3g}x its tolerance, at {at}"
        )
    if verdict == "nonfinite":
        return (
            f"{int(result.nonfinite.sum())} of {total} analytic entries are NaN or inf where "
            f"the function is finite; first at {at}"
        )
    if verdict == "nondifferentiable":
        nan = any(not np.isfinite(e.analytic) for e in worst)
        evidence = "; the analytic derivative is NaN or inf there" if nan else ""
        if np.isinf(kink).any():
            return (
                f"{int(result.kinked.sum())} of {total} entries sit on a jump: the function's "
                f"value is discontinuous there (a step, a `where` at its threshold); first at "
                f"{at}{evidence}"
            )
        return (
            f"{int(result.kinked.sum())} of {total} entries sit on a kink: one-sided slopes "
            f"differ by up to {float(np.max(np.abs(kink))):.3g} (relu/abs at 0, a tie in "
            f"max/min); first at {at}{evidence}"
        )
    if result.noisy is not None and result.noisy.any():
        return (
            f"{int(result.unresolved.sum())} of {total} entries could not be resolved: the "
            f"analytic derivative is rounding noise there, as large as the entries themselves "
            f"(it changes erratically between points 1e-9 apart: the derivative code cancels "
            f"terms far larger than its result), so a wrong value of that size could not "
            f"show (e.g. {top.describe() if top else ''})"
        )
    return (
        f"{int(result.unresolved.sum())} of {total} entries could not be resolved: the "
        f"finite-difference error is as large as the derivative (e.g. "
        f"{top.describe() if top else ''})"
    )
