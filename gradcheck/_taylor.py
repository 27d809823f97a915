"""The Taylor-remainder test: a verdict on one directional derivative without a tolerance.

Note: Taylor remainder
    Along a direction v with cotangent u, let φ(t) = ⟨u, f(x + t·v)⟩ and s the analytic
    slope ⟨u, J·v⟩. The remainder r(h) = |φ(h) - φ(0) - h·s| falls like h² when s is right
    and like h·|s - φ'(0)| once h is small enough when it is wrong: the slope of log r
    against log h is 2 or 1, whatever the scale of the function. On a ladder of power-of-two
    steps, remainders below the round-off of φ are discarded and the slope is read at the
    small-step end. A slope near 1 confirms a wrong derivative; a slope near 2 down to step
    h_min shows that s is right to about r(h_min) / (h_min·|s|) relative — the test's
    resolution. One evaluation per step, so it is cheap enough to run on every borderline
    entry, and it owes nothing to the finite-difference error estimate.

Note: One-sided remainders
    A kink a little way off x along v (|x - c| with c 1e-3 away, behind an offset of 4e9
    whose round-off hides the small steps) also leaves a remainder that falls like h: on the
    side of the kink, r(h) = J·(h - δ) for the steps past it; on the other side φ is smooth
    and r(-h) is far smaller. A wrong slope leaves the same remainder on both sides,
    |s - φ'(0)|·h. So where the slope reads near 1, the steps it was read from are taken
    once more at -h (TAIL + 1 evaluations), and a mirror remainder ASYMMETRY times smaller at
    any of them confirms nothing: undecided, and said so. A mirror that is not finite (a
    domain edge) is no evidence either way, and the reading stands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ._compare import Comparison
from ._differentiable import Differentiable
from ._fd import DEFAULT, start_steps
from ._results import CheckResult, Verdict, worst_verdict

STEPS = 48  # power-of-two steps from the start step down
ABOVE_NOISE = 64.0  # a remainder must exceed round-off by this factor to count
TAIL = 3  # slopes read at the small-step end
ASYMMETRY = 4.0  # a remainder this many times smaller at -h than at h: not a wrong slope


@dataclass(frozen=True, slots=True)
class Remainder:
    """The outcome of one Taylor-remainder test.

    Attributes:
        slope: median log-log slope at the small-step end; None where too few remainders
            rose above round-off to read one.
        resolution: relative error of the analytic slope the test could have seen.
        evaluations: function evaluations spent.
    """

    slope: float | None
    resolution: float
    evaluations: int
    steps: tuple[float, ...] = ()  # where the remainder rose above round-off, for plots
    remainders: tuple[float, ...] = ()
    one_sided: bool = False  # far smaller at -h than at h: a kink within the steps

    @property
    def verdict(self) -> str:
        """ "inconsistent" (slope ≈ 1), "consistent" (slope ≈ 2 or more) or "undecided".

        A remainder that does not fall at all (slope near 0) is not a wrong slope: it is
        noise above the round-off model, or a jump in f.
        """
        if self.slope is None or self.slope < 0.7:
            return "undecided"
        if self.slope <= 1.3:
            return "undecided" if self.one_sided else "inconsistent"
        if self.slope >= 1.7:
            return "consistent"
        return "undecided"

    @property
    def discrepancy(self) -> float:
        """|analytic - true slope| as the smallest usable step shows it: r(h)/h."""
        return self.remainders[-1] / self.steps[-1] if self.steps else np.inf

    def describe(self) -> str:
        if self.slope is None:
            return "the Taylor remainder never rose above round-off"
        if self.one_sided and self.verdict == "undecided":
            return (
                f"the Taylor remainder falls as h^{self.slope:.2f} on one side only"
                " (a kink within its steps, not a wrong slope)"
            )
        return f"the Taylor remainder falls as h^{self.slope:.2f}" + (
            f" (resolution {self.resolution:.1e})" if self.verdict == "consistent" else ""
        )


def remainder_test(
    fn: Differentiable,
    f0: np.ndarray,
    direction: np.ndarray,
    u: np.ndarray,
    slope: float,
    sigma: np.ndarray | None = None,
) -> Remainder:
    """Run the test along `direction` for φ = ⟨u, f⟩ with analytic slope `slope`.

    The direction must give exact steps (`exact_directions`, or a coordinate direction).
    `sigma` is the measured round-off of f's values per output (`_fd.noise`), if known.
    """
    h0 = float(start_steps(fn.x0, direction[None, :], 1.0)[0])
    steps = h0 * 2.0 ** -np.arange(STEPS)
    values = fn.values(fn.x0[None, :] + steps[:, None] * direction[None, :]) @ u
    phi0 = float(f0 @ u)
    scale = np.abs(u) @ np.abs(f0)
    remainder = np.abs(values - phi0 - steps * slope)
    noise = DEFAULT.noise_ulps * fn.eps * (2 * scale + np.abs(steps * slope))
    if sigma is not None:
        noise = noise + 2 * np.abs(u) @ sigma
    # φ(h) bit-identical to φ(0) says only that f moved less than its rounding quantum, which
    # may be an intermediate's of any size ((c + s) - c is rounded to ulp(c)): its remainder
    # is h·|s| exactly, and falls like h whatever the slope (Note: Flat rows in `_fd.ladder`).
    usable = np.isfinite(remainder) & (remainder > ABOVE_NOISE * noise) & (values != phi0)
    idx = np.flatnonzero(usable)
    # Keep the contiguous run of usable steps that reaches furthest down.
    if idx.size:
        breaks = np.flatnonzero(np.diff(idx) != 1)
        idx = idx[breaks[-1] + 1 :] if breaks.size else idx
    shown = (tuple(float(h) for h in steps[idx]), tuple(float(r) for r in remainder[idx]))
    if idx.size < TAIL + 1:
        return Remainder(None, np.inf, STEPS, *shown)
    tail = idx[-(TAIL + 1) :]
    slopes = np.log2(remainder[tail[:-1]] / remainder[tail[1:]])
    last = tail[-1]
    resolution = float(remainder[last] / (steps[last] * abs(slope))) if slope else np.inf
    found = Remainder(float(np.median(slopes)), resolution, STEPS, *shown)
    if found.verdict != "inconsistent":
        return found
    # Note: One-sided remainders: a wrong slope leaves the same remainder at -h.
    mirrored = fn.values(fn.x0[None, :] - steps[tail, None] * direction[None, :]) @ u
    with np.errstate(invalid="ignore"):
        mirror = np.abs(mirrored - phi0 + steps[tail] * slope)
    one_sided = bool((mirror < remainder[tail] / ASYMMETRY).any())
    return replace(found, evaluations=STEPS + len(tail), one_sided=one_sided)


BORDERLINE = 100.0  # a mismatch within this factor of its tolerance gets a second opinion
REVIEWED = 8  # entries reviewed per check at the most

Probe = Callable[[int], tuple[np.ndarray, np.ndarray]]
"""Maps a flat entry index of a check to its (direction, cotangent) for the remainder test."""


def review(
    source: Differentiable,
    s0: np.ndarray,
    sigma: np.ndarray,
    result: Comparison,
    analytic: np.ndarray,
    numeric: np.ndarray,
    probe: Probe,
    where: Callable[[int], str],
    order: int,
) -> tuple[Comparison, CheckResult | None]:
    """Second opinions on borderline mismatches and unresolved entries (Note: Taylor remainder).

    A remainder falling as h¹ confirms a mismatch, or turns an unresolved entry into one,
    unless the discrepancy it shows is within the analytic side's own rounding (rounding
    garbage where the derivative is exactly 0: Note: Measured analytic noise in `_rounding`);
    a remainder falling as h² finer than the finite-difference discrepancy contradicts a
    mismatch (the entry becomes unresolved: the two methods disagree) and resolves an
    unresolved entry whose resolution is better than 1 %.
    """
    a, n = analytic.ravel(), numeric.ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.abs(a - n) / result.allowed.ravel()
    borderline = result.mismatch.ravel() & (ratio < BORDERLINE)
    candidates = np.flatnonzero(borderline | result.unresolved.ravel())
    if candidates.size == 0:
        return result, None
    candidates = candidates[np.argsort(-np.nan_to_num(ratio[candidates], nan=np.inf))][:REVIEWED]
    mismatch, unresolved = result.mismatch.ravel().copy(), result.unresolved.ravel().copy()
    rounding = np.zeros(a.size) if result.rounding is None else result.rounding.ravel()
    lines: list[str] = []
    series: list[dict[str, object]] = []
    verdicts: list[Verdict] = []
    spent = 0
    for i in candidates:
        direction, u = probe(int(i))
        test = remainder_test(source, s0, direction, u, float(a[i]), sigma)
        spent += test.evaluations
        outcome: Verdict = "inconclusive"  # too coarse to confirm or contradict anything
        if test.verdict == "inconsistent" and test.discrepancy > rounding[i]:
            mismatch[i], unresolved[i], outcome = True, False, "fail"
        elif test.verdict == "consistent":
            discrepancy = abs(a[i] - n[i]) / max(abs(a[i]), np.finfo(float).tiny)
            if mismatch[i] and test.resolution < discrepancy / 4:
                mismatch[i], unresolved[i], outcome = False, True, "pass"
            elif unresolved[i] and test.resolution < 1e-2:
                unresolved[i], outcome = False, "pass"
        verdicts.append(outcome)
        lines.append(f"{where(int(i))}: {test.describe()}")
        series.append(
            {"where": where(int(i)), "h": test.steps, "r": test.remainders, "slope": test.slope}
        )
    shape = result.mismatch.shape
    still = unresolved.reshape(shape)
    noisy = None if result.noisy is None else result.noisy & still
    updated = replace(result, mismatch=mismatch.reshape(shape), unresolved=still, noisy=noisy)
    overall = worst_verdict(verdicts)
    message = f"{len(candidates)} contested entries: " + "; ".join(lines)
    return updated, CheckResult(
        "taylor",
        overall,
        message,
        order=order,
        entries=len(candidates),
        evaluations=spent,
        remainders=tuple(series),
    )
