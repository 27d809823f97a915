"""The adaptive finite-difference engine: a Richardson ladder per direction, batched.

Note: Step choice and error estimate
    For each direction d the engine estimates the q-th derivative of g(t) = f(x + t·d) at 0.
    It evaluates a stencil (see `stencils`) at a descending ladder of steps h, h/r, h/r², …
    and extrapolates the rows in a Neville tableau (Ridders' method): column j removes the
    j-th power of h from the truncation error, and the error of every tableau entry is
    estimated by its distance to the two lower-order entries it was built from. The entry
    with the smallest estimate wins.

    Three things decide how far down the ladder goes:
    * Truncation: large steps see the function's curvature. While the differences between
      successive rows do not shrink as h^p predicts (ratio ≈ r^-p), the step is above the
      function's own length scale (sin(1e5·x), exp at large x, log near 0⁺); the tableau is
      discarded and the step jumps down by `coarse_ratio` at a time. The same holds when the
      one-sided slopes grow apart as the step halves: the step straddles a bump of a
      saturating function, where central differences can sit still at a wrong value. A
      step chosen from |x| alone is therefore only a starting point, not a decision.
    * Start: start_factor·|x| (a power of two), or larger where the caller knows the size of
      the derivative and of f's round-off: the third row must keep round-off below 1e-9 of
      the derivative, or the ladder would end noise-limited and need a second one (a loss
      summed over many samples has a large |f| next to each partial derivative).
    * Round-off: each stencil value carries noise ≈ eps_f·Σ|w|·|f| / h^q, which grows as h
      shrinks. When no entry has improved for `stall_rows` rows and every entry is either
      converged or down at its noise, the noise has won and the ladder stops. The reported
      error is never below twice that noise at the winning row, so a large constant offset
      (1e8 + …) shows up as an honest error floor.
    * Confirmation: nothing is accepted from fewer than `min_rows` rows, and every later row
      is a check on the best estimate so far: where it disagrees by more than its own error,
      the best estimate's error grows to that disagreement. Tableau entries whose neighbours
      agree by accident (a "false plateau", at large steps of a saturating function or for
      one output among thousands) are caught this way: Ridders' estimate compares an entry
      only with the lower-order entries it was built from.

    Non-finite samples (a step that leaves the function's domain, exp overflow) shrink the step
    and retry; when one side stays non-finite the caller re-runs that direction one-sided.

Note: Noise level
    Round-off in f is not only eps·|f|: a sum of a thousand terms, or code that rounds its
    arguments (a cast to float32, 1e5·x before a sin), is noisier. Along a coordinate
    direction the Ridders error estimate usually sees that noise in the tableau; along a
    random direction every coordinate moves, the noise adds up across coordinates while the
    derivative may cancel, and the tableau can look calmer than it is. So callers may pass
    `noise_level`, the absolute round-off of one value of f beyond eps_f·|f|, per direction
    and output; the checker builds it from the size of the analytic gradient,
    eps·Σ_i |x_i·d_i·∂_i f| (argument rounding), and from the noise it measured directly
    (`noise`). A wrong analytic gradient can only widen the first term by eps·|x/h| of
    itself, far below any error it could hide.

Note: Exact steps
    The point x + h·d is rounded to float64, so the step actually taken is not h·d. The
    difference is about one ulp of each coordinate, which a well-conditioned function does
    not notice, but exp near 700 turns one ulp of x into 700 ulps of f: a 1e-11 error that no
    error estimate sees. So every step is a power of two and every ratio between steps is
    one: for a coordinate direction, x_i ± h is then exact whenever h ≥ ulp(x_i). A random
    direction is first nudged (`exact_directions`) so that each component of h·d is a
    multiple of its coordinate's ulp for all the steps a ladder can reach; the checker uses
    the nudged direction on the analytic side too.

Note: Kink straddle
    A central difference whose step reaches past a kink at distance δ < h (a relu unit just
    off zero, a max-pool tie nearby) is off by exactly half the jump in one-sided slopes,
    J(h)/2, and so is every extrapolation built from it; in float32 code the smaller steps
    that do not straddle are too noisy to contradict it. For a smooth function J(h) halves
    with the step, and stays constant across a kink at x itself; where it does neither
    between two rows, the larger row straddled a kink nearby, and its bias J/2 joins the error
    of the estimates built from it (a third of it through one extrapolation). The entry's
    tolerance then covers the bias (as SAFETY times any error estimate): a correct gradient is
    no longer a false alarm, and an entry whose bias is as large as itself is unresolved, but
    an error of a few times the bias can pass where a clean step would have resolved better.

Note: Exactly linear rows
    A staircase seen at steps that are whole multiples of its stair (floor(x) at |x| ≈ 1500,
    where the first step is 8) is exactly linear on that grid: floor(x + k) = floor(x) + k,
    so every row gives slope 1 to the last bit and the tableau "confirms" it with an error of
    0, where the derivative is 0. A function that is truly linear along the direction gives
    the same slope at any step; a staircase does not. So where the last two rows agreed
    bitwise (early agreement included), one central difference at 2^-10 of the step is
    taken, and if it disagrees beyond its round-off the estimate's error grows to the
    disagreement (the entry is then contested and gets the thorough look, whose smaller
    steps see the stairs). Two evaluations, only for such directions.

Note: Early agreement
    Three rows are needed to prove an estimate from the differences alone (the regime test
    compares two row differences), and the tableau's own error estimate often asks for a
    fourth or fifth before it is below the ladder's target. Where the caller knows what the
    derivative should be (the analytic values, by every route it computed), a ladder starts
    with two rows and stops at the first row, from the second on, where on every output the
    row's highest Richardson extrapolation matches every expected value to EARLY_RTOL
    (1e-12) or to its own round-off, that round-off is below the ladder's target
    (policy.rtol, 1e-9), and the slope jump halves with the step (no kink straddled); or
    where this row and the one before are exactly 0 where 0 is expected. Two independent
    computations do not agree that closely by accident, and any larger error takes the full
    ladder, whose own error is never below that round-off: nothing is lost that more rows
    would have caught. The estimate is that extrapolation; its error, the agreement shown
    (EARLY_RTOL of the expected value, and at least four times its round-off). EARLY_RTOL
    sits below the rounding the comparison grants an analytic value (about 1e-11 of it where
    the arguments are large, `_compare`): at 1e-10, torch's digamma derivative, 4e-11 off,
    passed, where the full ladder resolves it to 2e-13 and fails it. A linear or quadratic
    function settles after two rows, a smooth one usually after three (2^-7·|x| is small
    enough for an extrapolation of order h^6 to match to 1e-12): correct gradients cost 4–6
    evaluations per coordinate instead of 6–10, and a small check's ladders rarely need a
    call beyond the rows evaluated ahead (`_prefetch`). Fast mode's probes stop the same way
    (J v by forward mode; ⟨Jᵀu, v⟩/u by reverse mode where f has one output): with three
    rows always, rounding that changes with XLA's batch shape made some probes contested
    (tanh(W x) at n = 1000: ~350 evaluations instead of 31 at 1 of 20 fresh points).

Note: Flat rows
    A row whose samples are bit-identical to f(x) says only that f changed by less than its
    rounding quantum, and that quantum can be far above eps·|f|: a cross-entropy loss near 0
    is log(1 + e) with 1 + e rounded to multiples of eps, so f ≈ 3e-14 moves in steps of
    2e-16 (OpInfo linear_cross_entropy, reduction="none"), and a step of 2e-4 sees nothing
    where the slope is 3e-14. Counted with eps·|f| as its noise, such a row "proves" a
    derivative of 0 ± 1e-24 and outranks every honest estimate at larger steps. So a flat
    row's round-off is taken at the scale of an intermediate of size HIDDEN_UNIT (as for
    the hidden resolution of measured noise, `noise`): it still tells a constant f from a
    slope that would have moved f visibly (floor between its jumps against a
    straight-through gradient of 1), but no longer outranks the rows where f moved.

Note: Kink detection
    For first derivatives with a central stencil the same samples give the jump between the
    one-sided slopes, J(h) = (g(h) - 2·g(0) + g(-h)) / h. For a smooth g, J(h) ≈ h·g''(0)
    halves with each halving of h; across a kink (relu or abs at 0, a tie in max) it stays at
    the jump in slope. A direction whose jump is significant and constant over the last three
    rows is reported as a kink; the checker turns that into the "nondifferentiable" verdict.

Note: Kink probe
    Rows whose steps all reach past a kink a little way off x (two relu units 0.002 from
    their kinks, in float32 code whose noise keeps the ladder at steps of 0.06) show a slope
    jump as constant as a kink at x itself. So where a kink is found, the jump is measured
    once more at the smallest step that still shows it far above round-off
    (KINK_PROBE_SIGNAL), and at least eight times below the rows': a kink at x keeps its
    jump there, one nearby has been left behind and its jump is nearly gone (below
    KINK_GONE of it). Then there is no kink at x, and the rows' estimate is biased by up to
    half the jump: its error becomes infinite, the entry is unresolved, and the thorough
    ladders (whose smaller starts stay clear of the kinks) get to settle it. Two evaluations,
    only for directions with a kink.

Note: Jump detection
    A kink keeps the function continuous; a jump does not (a step function at its step,
    `where(x > c, x + 1, x)` at c). The same samples show it: the larger one-sided change in
    value, max(|g(h) - g(0)|, |g(0) - g(-h)|), shrinks like h for a continuous g but stays at
    the size of the jump however small h gets. A direction whose one-sided change is
    significant and constant over the last three rows, while the step shrank at least
    eightfold, is reported with an infinite kink: the function is discontinuous there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .policy import DEFAULT, Ladder
from .stencils import FiniteDifference, backward, forward

BatchFn = Callable[[np.ndarray], np.ndarray]
"""Maps points X of shape (k, n) to values of shape (k, m), all float64."""

Selection = np.ndarray | slice
"""The directions one ladder row updates: their indices, or slice(None) for all of them."""


def round_off(
    policy: Ladder, eps_f: float, scale: np.ndarray, noise_level: np.ndarray | None
) -> np.ndarray:
    """Round-off of one value of f of size `scale`: the policy's ulps of it, plus the caller's
    noise level where given (Note: Noise level)."""
    per_value: np.ndarray = policy.noise_ulps * eps_f * scale
    return per_value if noise_level is None else per_value + noise_level


@dataclass(frozen=True)
class Coordinates:
    """The unit vectors e_i of R^n for i in `indices`, without building them.

    A full check differentiates along every coordinate; as dense rows, the directions of a
    10k-parameter model would be an 800 MB identity, and every ladder row would multiply it.
    """

    indices: np.ndarray
    n: int

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, which: Any) -> Coordinates:
        return Coordinates(self.indices[which], self.n)

    def dense(self) -> np.ndarray:
        block = np.zeros((len(self.indices), self.n))
        block[np.arange(len(self.indices)), self.indices] = 1.0
        return block


Directions = np.ndarray | Coordinates
"""Rows are directions: a (d, n) array, or unit vectors given by their indices."""


def points_along(
    x: np.ndarray, directions: Directions, offsets: np.ndarray, steps: np.ndarray
) -> np.ndarray:
    """x + o·h·d for every direction d (with its step h) and offset o: (d·len(offsets), n)."""
    if isinstance(directions, Coordinates):
        count = len(directions) * len(offsets)
        points = np.repeat(x[None, :], count, axis=0)
        columns = np.repeat(directions.indices, len(offsets))
        points[np.arange(count), columns] += (steps[:, None] * offsets[None, :]).ravel()
        return points
    moved: np.ndarray = x + (offsets[None, :, None] * steps[:, None, None]) * directions[:, None, :]
    return moved.reshape(-1, x.size)


@dataclass(frozen=True, slots=True)
class Estimates:
    """Derivative estimates along a batch of directions.

    Attributes:
        value: (d, m) the best estimate per direction and output.
        error: (d, m) its estimated absolute error; inf where nothing could be resolved.
        step: (d,) the smallest step behind each best estimate (in units of the direction).
        kink: (d, m) the jump in one-sided slopes where a kink was detected, inf where the
            value itself jumps (Note: Jump detection), else 0.
        nonfinite: (d,) True where the last samples were not finite (domain edge, overflow).
        noise: (d, m) the round-off part of `error`: the noise model at the winning row where
            it set the error, else 0 (the error is then the tableau's own estimate).
        evaluations: function evaluations spent, f(x) not included.
        linear: (d,) True where the last two rows gave bitwise-equal estimates on every
            output (Note: Exactly linear rows); None where not tracked.
    """

    value: np.ndarray
    error: np.ndarray
    step: np.ndarray
    kink: np.ndarray
    nonfinite: np.ndarray
    noise: np.ndarray
    evaluations: int
    linear: np.ndarray | None = None


def ladder(
    evaluate: BatchFn,
    x: np.ndarray,
    f0: np.ndarray,
    directions: Directions,
    start: np.ndarray,
    method: FiniteDifference,
    *,
    eps_f: float,
    policy: Ladder = DEFAULT,
    noise_level: np.ndarray | None = None,
    expected: tuple[np.ndarray, ...] = (),
) -> Estimates:
    """Estimate derivatives of f along every row of `directions` at once.

    Args:
        evaluate: the batched function, float64 in and out.
        x: (n,) the point.
        f0: (m,) f(x), shared by every direction.
        directions: (d, n) the directions; a step h samples x + o·h·direction.
        start: (d,) the first step of each ladder.
        method: the stencil.
        eps_f: unit round-off of f's values (2.2e-16 for float64 code).
        policy: the step policy (ratios, rows, stopping accuracy).
        noise_level: (d, m) optional; round-off of one value of f beyond eps_f·|f|
            (Note: Noise level).
        expected: (d, m) arrays the caller expects the derivatives to be (the analytic ones),
            for Note: Early agreement; it decides only where a ladder may stop.

    Returns:
        The estimates, their error bounds and the evidence for kinks.
    """
    run = _Tableaux(f0, len(directions), start, method, eps_f, policy, noise_level)
    early = bool(expected) and run.plan.detect_kinks
    run.expected = expected if early else ()
    first_rows = EARLY_ROWS if early else policy.min_rows
    # (`opening_samples` predicts the first call and the linear probe: keep the two in step.)
    rows = _Rows(evaluate, x, directions, run.plan.offsets, len(f0))
    while run.active.any():
        idx = np.flatnonzero(run.active)
        ahead = first_rows if not rows.seen(idx).any() else 1
        run.add_row(idx, rows.at(idx, run.h[idx], ahead, policy.ratio))
    run.evaluations = rows.evaluations
    result = run.estimates()
    if run.plan.detect_kinks:  # a central first difference: Note: Exactly linear rows
        probes = _Probes(evaluate, x, f0, directions)
        result = probes.kinks(probes.linear(result, eps_f), eps_f, policy, noise_level)
    return result


PAIR = np.array([-1.0, 1.0])
"""The offsets of a probe pair (Note: Exactly linear rows, Note: Kink probe)."""


def sampled_offsets(method: FiniteDifference) -> np.ndarray:
    """The stencil's offsets other than 0: f(x) itself is known."""
    return np.array([o for o in method.offsets if o != 0], dtype=float)


def row_points(
    x: np.ndarray,
    directions: Directions,
    offsets: np.ndarray,
    steps: np.ndarray,
    ahead: int,
    ratio: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The points of `ahead` rows per direction, from `steps` down by `ratio`, and those
    rows' steps (d, ahead)."""
    ladder = steps[:, None] / ratio ** np.arange(ahead)[None, :]
    repeated = directions[np.repeat(np.arange(len(directions)), ahead)]
    return points_along(x, repeated, offsets, ladder.ravel()), ladder


def opening_samples(
    x: np.ndarray,
    directions: Directions,
    start: np.ndarray,
    method: FiniteDifference,
    policy: Ladder,
) -> np.ndarray:
    """The points of a ladder's first `policy.min_rows` rows from `start` (with expected
    values it asks for EARLY_ROWS of them first, and for the rest where they do not settle
    it: Note: Early agreement), then the linear probe it takes where two rows agree bitwise
    and settle at once (Note: Exactly linear rows): every function is asked for the first
    rows, a linear one (most elementwise ops, along a coordinate) for the probe too. For a
    caller that can evaluate them in a call it makes anyway (`_prefetch`).
    """
    rows, steps = row_points(
        x, directions, sampled_offsets(method), start, policy.min_rows, policy.ratio
    )
    probe = points_along(x, directions, PAIR, steps[:, EARLY_ROWS - 1] * LINEAR_PROBE)
    return np.concatenate([rows, probe])


class _Rows:
    """The samples of ladder rows, evaluated a few rows ahead where the next ones are known.

    Every tableau needs `min_rows` rows before it can be accepted, and its steps follow
    h, h/r, h/r² unless the regime test restarts it; so a fresh ladder's first rows go to the
    function in one batch rather than one call each (a vmapped call costs about as much as a
    small batch). A row whose step changed in between is evaluated anew, so the estimates are
    exactly those of one row at a time.
    """

    def __init__(
        self, evaluate: BatchFn, x: np.ndarray, directions: Directions, offsets: np.ndarray, m: int
    ) -> None:
        self._evaluate, self._x, self._directions = evaluate, x, directions
        self._offsets, self._m = offsets, m
        self._stash: dict[tuple[int, float], np.ndarray] = {}  # (direction, step) -> samples
        self._started = np.zeros(len(directions), dtype=bool)
        self.evaluations = 0

    def seen(self, idx: np.ndarray) -> np.ndarray:
        """Whether each direction has been sampled before."""
        seen: np.ndarray = self._started[idx]
        return seen

    def at(self, idx: np.ndarray, steps: np.ndarray, ahead: int, ratio: float) -> np.ndarray:
        """Samples (len(idx), offsets, m) of the rows at `steps`, and `ahead - 1` rows after."""
        self._started[idx] = True
        missing = [
            k for k, (d, h) in enumerate(zip(idx, steps, strict=True)) if (d, h) not in self._stash
        ]
        if missing:
            which = idx[missing]
            points, ladder = row_points(
                self._x, self._directions[which], self._offsets, steps[missing], ahead, ratio
            )
            fresh = np.asarray(self._evaluate(points), dtype=float)
            fresh = fresh.reshape(len(which), ahead, len(self._offsets), self._m)
            self.evaluations += fresh.shape[0] * fresh.shape[1] * fresh.shape[2]
            for row, d in enumerate(which):
                for k in range(ahead):
                    self._stash[(int(d), float(ladder[row, k]))] = fresh[row, k]
        return np.stack(
            [self._stash.pop((int(d), float(h))) for d, h in zip(idx, steps, strict=True)]
        )


@dataclass(frozen=True)
class _Plan:
    """What a stencil and a step policy fix for every tableau built from them."""

    offsets: np.ndarray  # the sampled offsets (not 0)
    weights: np.ndarray  # their weights
    center: float  # the weight of f(x)
    abs_weight_sum: float
    cols: int  # tableau columns
    factors: np.ndarray  # r^p - 1 per extrapolated column
    amplification: np.ndarray  # of the noise, per column
    detect_kinks: bool  # a central first difference: slope jumps are seen

    @staticmethod
    @functools.cache
    def of(method: FiniteDifference, policy: Ladder) -> _Plan:
        pairs = list(zip(method.offsets, method.weights, strict=True))
        cols = min(len(method.powers), policy.max_rows) + 1
        factors = np.array([policy.ratio**p - 1.0 for p in method.powers[: cols - 1]])
        return _Plan(
            offsets=sampled_offsets(method),
            weights=np.array([w for o, w in pairs if o != 0]),
            center=sum(w for o, w in pairs if o == 0),
            abs_weight_sum=float(np.sum(np.abs(method.weights))),
            cols=cols,
            factors=factors,
            # Extrapolation amplifies noise: column j combines (f+1)·T[i][j-1] - T[i-1][j-1]
            # over f, and the larger step of row i-1 carries r^-q of the noise (Note: Step
            # choice).
            amplification=np.cumprod(
                [1.0, *((factors + 1 + policy.ratio**-method.order) / factors)]
            ),
            detect_kinks=method.kind == "central"
            and method.order == 1
            and set(method.offsets) == {-1, 1},
        )


class _Tableaux:
    """The state of one batch of ladders, one Neville tableau per direction (Note: Step choice).

    Each row of samples extends the tableaux of the directions still active; `add_row` reads
    the regime (still above the function's length scale?), keeps the best entry per output
    with its error, and decides which ladders stop.
    """

    def __init__(
        self,
        f0: np.ndarray,
        d: int,
        start: np.ndarray,
        method: FiniteDifference,
        eps_f: float,
        policy: Ladder,
        noise_level: np.ndarray | None,
    ) -> None:
        m = len(f0)
        self.f0, self.eps_f, self.policy, self.noise_level = f0, eps_f, policy, noise_level
        self.q = method.order
        self.plan = _Plan.of(method, policy)
        self.h = start.astype(float).copy()
        self.prev = np.full((d, self.plan.cols, m), np.nan)
        self.rows = np.zeros(d, dtype=int)  # rows in the current tableau
        self.used = np.zeros(d, dtype=int)  # rows spent, jumps and retries included
        self.stalled = np.zeros(d, dtype=int)
        self.last_diff = np.full((d, m), np.nan)
        self.best = np.full((d, m), np.nan)
        self.best_err = np.full((d, m), np.inf)
        self.best_step = self.h.copy()
        self.floor = np.zeros((d, m))  # the noise floor behind each best estimate
        self.jumps = np.full((d, 3, m), np.nan)  # one-sided slope jumps of the last three rows
        self.gaps = np.full((d, 3, m), np.nan)  # one-sided value changes (Note: Jump detection)
        self.gap_steps = np.full((d, 3), np.nan)
        self.gap_noise = np.zeros((d, m))
        self.equal_rows = np.zeros(d, dtype=int)  # consecutive rows with bitwise-equal estimates
        self.nonfinite = np.zeros(d, dtype=bool)
        self.active = np.ones(d, dtype=bool)
        self.evaluations = 0
        self.expected: tuple[np.ndarray, ...] = ()  # Note: Early agreement

    def add_row(self, idx: np.ndarray, samples: np.ndarray) -> None:
        """Take one row of samples (len(idx), offsets, m) for the active directions idx.

        Ratios and differences of inf and NaN entries (rows not yet filled, slopes of 0) are
        expected here: the row's steps run without floating-point warnings, once for all.
        """
        with np.errstate(invalid="ignore", divide="ignore"):
            self._add_row(idx, samples)

    def _add_row(self, idx: np.ndarray, samples: np.ndarray) -> None:
        self.used[idx] += 1
        finite = np.isfinite(samples).all(axis=(1, 2))
        self.nonfinite[idx] = ~finite
        bad = idx[~finite]
        self.rows[bad] = 0  # leave the domain edge behind: smaller step, fresh tableau
        self.h[bad] /= self.policy.nonfinite_ratio
        ok: Selection
        if not finite.all():
            ok, s = idx[finite], samples[finite]
        else:  # every direction at once: views, not copies, of the per-direction state
            ok, s = (slice(None) if len(idx) == len(self.h) else idx), samples
        est, noise = self._first_column(ok, s)
        if self.plan.detect_kinks:
            self._track_gaps(ok, s)
        new, err = self._extend(ok, est)
        same = (self.rows[ok] >= 1) & (est == self.prev[ok, 0]).all(axis=1)
        self.equal_rows[ok] = np.where(same, self.equal_rows[ok] + 1, 0)
        too_big, jump = self._too_big(ok, s, new, est, noise)
        if jump is not None:
            err = self._straddled(ok, err, jump, noise)
        target = self._keep_best(ok, new, err, noise, too_big)
        if self.expected:
            self._stop_early(ok, new, noise, too_big, jump)
        self._advance(ok, new, too_big, jump, target)
        self.active[self.used >= self.policy.max_rows] = False

    def _indices(self, ok: Selection) -> np.ndarray:
        """The direction indices a selection stands for."""
        return np.arange(len(self.h))[ok] if isinstance(ok, slice) else ok

    def _first_column(self, ok: Selection, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The plain stencil estimate of each sample row, and its round-off."""
        hk, plan = self.h[ok] ** self.q, self.plan
        est = (np.einsum("apm,p->am", s, plan.weights) + plan.center * self.f0) / hk[:, None]
        scale = np.maximum(np.abs(s).max(axis=1), np.abs(self.f0))
        # Not one bit changed: f may be rounded at an intermediate's scale (Note: Flat rows).
        flat = (s == self.f0).all(axis=1)
        scale = np.where(flat, np.maximum(scale, HIDDEN_UNIT), scale)
        return est, plan.abs_weight_sum * self._round_off(scale, ok) / hk[:, None]

    def _track_gaps(self, ok: Selection, s: np.ndarray) -> None:
        """Remember the one-sided changes in value of this row (Note: Jump detection)."""
        gap = np.maximum(np.abs(s[:, 1] - self.f0), np.abs(self.f0 - s[:, 0]))
        _shift_in(self.gaps, ok, gap)
        _shift_in(self.gap_steps, ok, self.h[ok])
        self.gap_noise[ok] = self._round_off(np.maximum(np.abs(s).max(axis=1), np.abs(self.f0)), ok)

    def _round_off(self, scale: np.ndarray, ok: Selection) -> np.ndarray:
        """Round-off of one value of f of size `scale`, for the directions `ok`."""
        level = None if self.noise_level is None else self.noise_level[ok]
        return round_off(self.policy, self.eps_f, scale, level)

    def discontinuous(self) -> np.ndarray:
        """(d, m) True where the value jumps at the point (Note: Jump detection)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios = self.gaps[:, 1:] / self.gaps[:, :-1]
            shrunk = self.gap_steps[:, 0] / self.gap_steps[:, -1]
        constant = ((ratios > 0.8) & (ratios < 1.25)).all(axis=1)
        significant = self.gaps[:, -1] > self.policy.kink_significance * self.gap_noise
        found: np.ndarray = constant & significant & (shrunk >= 8)[:, None]
        return found

    def _extend(self, ok: Selection, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The new tableau row (Ridders) and the error estimate of each of its entries."""
        r = self.rows[ok]
        # Only the columns a tableau of r + 1 rows has: with many outputs the full width
        # would be most of the work.
        width = min(self.plan.cols, int(r.max(initial=0)) + 1)
        new = np.full((len(est), width, len(self.f0)), np.nan)
        new[:, 0] = est
        err = np.full((len(est), width, len(self.f0)), np.inf)
        for j in range(1, width):
            has = r >= j
            if not has.any():
                break
            p_prev = self.prev[ok, j - 1]
            new[:, j] = np.where(
                has[:, None],
                new[:, j - 1] + (new[:, j - 1] - p_prev) / self.plan.factors[j - 1],
                np.nan,
            )
            e = np.maximum(np.abs(new[:, j] - new[:, j - 1]), np.abs(new[:, j] - p_prev))
            err[:, j] = np.where(has[:, None], e, np.inf)
        return new, err

    def _too_big(
        self, ok: Selection, s: np.ndarray, new: np.ndarray, est: np.ndarray, noise: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Is the ladder still above the function's length scale? (Note: Step choice.)

        Also returns the one-sided slope jumps of this row, for kink detection.
        """
        r, policy = self.rows[ok], self.policy
        diff = np.abs(new[:, 0] - self.prev[ok, 0])
        shrink = diff / self.last_diff[ok]
        significant = (diff > 4 * noise) & (diff > 0.1 * np.abs(est))
        too_big: np.ndarray = (r >= 2) & (significant & (shrink > policy.too_big_ratio)).any(axis=1)
        self.last_diff[ok] = np.where((r >= 1)[:, None], diff, np.nan)
        if not self.plan.detect_kinks:
            return too_big, None
        # Across a bump (a saturating function: equal values on both sides) the one-sided
        # slopes grow apart as the step halves, while central differences may sit still at
        # a wrong value; in the asymptotic regime their jump halves instead.
        jump = (s[:, 1] - 2 * self.f0 + s[:, 0]) / self.h[ok][:, None]
        growth = np.abs(jump) / np.abs(self.jumps[ok, -1])
        bump = (np.abs(jump) > policy.kink_significance * 4 * noise) & (growth > policy.bump_growth)
        return too_big | ((r >= 1) & bump.any(axis=1)), jump

    def _straddled(
        self, ok: Selection, err: np.ndarray, jump: np.ndarray, noise: np.ndarray
    ) -> np.ndarray:
        """Errors of this row's entries, and of the best so far, raised where the previous,
        twice larger step straddled a kink (Note: Kink straddle)."""
        previous = self.jumps[ok, -1]
        if np.isnan(previous).all():  # no earlier row of this tableau: nothing to straddle
            return err
        ratio = np.abs(previous) / np.abs(jump)
        # A bias raises an error bound, never a verdict: a low bar (STRADDLE_SIGMAS).
        significant = np.abs(previous) > STRADDLE_SIGMAS * 4 * noise
        smooth = (ratio >= 1.5) & (ratio <= 2.7)
        at_point = (ratio >= 0.8) & (ratio <= 1.25)  # a kink at x itself: Note: Kink detection
        straddled = significant & ~smooth & ~at_point & np.isfinite(previous)
        bias = np.where(straddled, np.abs(previous) / 2, 0.0)
        if not bias.any():
            return err
        raised: np.ndarray = err.copy()
        if raised.shape[1] > 1:  # built from the previous row: a third of its bias
            raised[:, 1:] = np.maximum(raised[:, 1:], bias[:, None, :] / self.plan.factors[0])
        # Every best so far came from a row at least as large as the straddling one.
        self.best_err[ok] = np.maximum(self.best_err[ok], bias)
        return raised

    def _keep_best(
        self,
        ok: Selection,
        new: np.ndarray,
        err: np.ndarray,
        noise: np.ndarray,
        too_big: np.ndarray,
    ) -> np.ndarray:
        """Keep the best entry per output; count rows without improvement. Returns the
        accuracy each output must reach to stop."""
        r, best, best_err = self.rows[ok], self.best[ok], self.best_err[ok]
        # The best entry of this row, per output; its error is never below its own noise.
        pick = np.argmin(err, axis=1)
        noise = noise * self.plan.amplification[pick]  # of the winning tableau column
        usable = ~too_big & (r >= 2)  # the regime test needs three rows
        # Only round-off can stall a ladder: an error still far above the noise means the
        # steps are too big, and the ladder goes on down (bounded by max_rows). That holds
        # per output: one whose steps still straddle a nearby kink (a relu unit just off
        # zero) must not be stopped by the other outputs of its direction being done.
        if not usable.any():  # a tableau's first rows: nothing is kept, nothing stalls
            self.stalled[ok] = 0
            target: np.ndarray = np.maximum(self.policy.rtol * np.abs(best), 4 * noise)
            return target
        cur = new[np.arange(len(pick))[:, None], pick, np.arange(pick.shape[1])[None, :]]
        cur_err = err.min(axis=1)  # err at pick (a NaN both picks and is the minimum)
        cur_err = np.maximum(cur_err, noise)
        # Confirmation by smaller steps: a later estimate that disagrees with the best one by
        # more than its own error shows that the best one's error was underestimated.
        conflict = np.abs(cur - best) - cur_err
        best_err = np.where(usable[:, None] & (conflict > best_err), conflict, best_err)
        better = usable[:, None] & (cur_err < best_err)
        self.best[ok] = np.where(better, cur, best)
        self.best_err[ok] = np.where(better, cur_err, best_err)
        self.best_step[ok] = np.where(better.any(axis=1), self.h[ok], self.best_step[ok])
        self.floor[ok] = np.where(better, noise, self.floor[ok])
        target = np.maximum(self.policy.rtol * np.abs(self.best[ok]), 4 * noise)
        settled = (cur_err <= 8 * noise) | (self.best_err[ok] <= target)
        noise_bound = settled.all(axis=1)
        self.stalled[ok] = np.where(
            better.any(axis=1) | ~usable | ~noise_bound, 0, self.stalled[ok] + 1
        )
        return target

    def _stop_early(
        self,
        ok: Selection,
        new: np.ndarray,
        noise: np.ndarray,
        too_big: np.ndarray,
        jump: np.ndarray | None,
    ) -> None:
        """Stop the ladders whose latest extrapolation agrees with every expected value to
        EARLY_RTOL on every output, from the second row on (Note: Early agreement)."""
        eligible = (self.rows[ok] >= 1) & ~too_big
        if not eligible.any() or jump is None or new.shape[1] < 2:
            return
        column = np.minimum(self.rows[ok], new.shape[1] - 1)  # the highest this row has
        extrapolated = new[np.arange(len(column)), column]
        amplified = noise * self.plan.amplification[column][:, None]
        expected = np.stack([e[ok] for e in self.expected])  # (routes, len(ok), m)
        with np.errstate(invalid="ignore"):
            deviation = np.abs(extrapolated[None] - expected).max(axis=0)
            scale = np.abs(expected).min(axis=0)
            # Within the row's own round-off where that is below the ladder's own target: the
            # full ladder could not have resolved more there (its error is at least that).
            quiet = amplified <= self.policy.rtol * scale
            close = quiet & (deviation <= np.maximum(EARLY_RTOL * scale, amplified))
            # Exactly 0 on both rows where 0 is expected: f does not depend on this input.
            # Not a symmetric kink either (|x| at 0 also has central differences of 0): the
            # one-sided changes are 0 too.
            untouched = (
                (scale == 0)
                & (new[:, 0] == 0)
                & (self.prev[ok, 0] == 0)
                & (jump == 0)
                & (self.jumps[ok, -1] == 0)
            )
            # The slope jump halves with the step: smooth, not a kink straddled.
            smooth = (np.abs(jump) <= 0.75 * np.abs(self.jumps[ok, -1])) | (
                np.abs(jump) <= self.policy.kink_significance * 4 * noise
            )
        agree = eligible & ((close & smooth) | untouched).all(axis=1)
        if not agree.any():
            return
        which = self._indices(ok)[agree]
        settled = np.where(untouched[agree], 0.0, extrapolated[agree])
        self.best[which] = settled
        # The agreement shown (to EARLY_RTOL), and above the round-off: not a noise-limited
        # estimate to be looked at again.
        self.best_err[which] = np.maximum(
            np.maximum(EARLY_RTOL * scale[agree], 4 * amplified[agree]), np.finfo(np.float64).tiny
        )
        self.floor[which] = amplified[agree]
        self.best_step[which] = self.h[which]
        self.active[which] = False

    def _advance(
        self,
        ok: Selection,
        new: np.ndarray,
        too_big: np.ndarray,
        jump: np.ndarray | None,
        target: np.ndarray,
    ) -> None:
        """Shift the tableaux one row down (or restart them coarser) and stop the done ones."""
        policy, width, r = self.policy, new.shape[1], self.rows[ok]
        if jump is not None:
            _shift_in(self.jumps, ok, jump)
        self.prev[ok, :width] = new
        if width < self.plan.cols:  # the next row reads at most one column further
            self.prev[ok, width] = np.nan
        self.rows[ok] = np.where(too_big, 0, r + 1)
        if jump is not None and too_big.any():
            self.jumps[self._indices(ok)[too_big]] = np.nan
        self.h[ok] /= np.where(too_big, policy.coarse_ratio, policy.ratio)
        converged = (self.rows[ok] >= policy.min_rows) & (self.best_err[ok] <= target).all(axis=1)
        done = converged | (self.stalled[ok] >= policy.stall_rows)
        self.active[self._indices(ok)[done]] = False

    def estimates(self) -> Estimates:
        """The best estimates, their errors and the kink evidence."""
        d, m = self.best.shape
        kink = np.zeros((d, m))
        if self.plan.detect_kinks:
            kink = _kinks(
                self.jumps,
                self.best,
                self.best_err,
                self.eps_f,
                self.f0,
                self.best_step,
                self.policy,
                self.noise_level,
            )
            kink = np.where(self.discontinuous(), np.inf, kink)
        # A tableau error within NOISE_LIKE of the round-off model is what two noisy rows
        # differ by: noise too (Note: Step choice, round-off), not truncation.
        noise = np.where(self.best_err <= NOISE_LIKE * self.floor, self.best_err, 0.0)
        return Estimates(
            self.best,
            self.best_err,
            self.best_step,
            kink,
            self.nonfinite,
            noise,
            self.evaluations,
            self.equal_rows >= 1,
        )


def _shift_in(history: np.ndarray, ok: Selection, latest: np.ndarray) -> None:
    """Drop the oldest of the last rows kept in `history` (axis 1) for `ok`, add `latest`."""
    if isinstance(ok, slice):  # views: shift in place
        history[ok, :-1] = history[ok, 1:].copy()
        history[ok, -1] = latest
    else:
        history[ok] = np.concatenate([history[ok, 1:], latest[:, None]], axis=1)


def _kinks(
    jumps: np.ndarray,
    best: np.ndarray,
    best_err: np.ndarray,
    eps_f: float,
    f0: np.ndarray,
    step: np.ndarray,
    policy: Ladder,
    noise_level: np.ndarray | None,
) -> np.ndarray:
    """The slope jump where the last three rows show a constant one, else 0.

    Only a converged ladder can testify: at steps above the function's length scale a smooth
    function looks piecewise linear too (log-sum-exp far from its crossover). See Note: Kink
    detection.
    """
    last = jumps[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = jumps[:, 1:] / jumps[:, :-1]
    constant = ((ratios > 0.8) & (ratios < 1.25)).all(axis=1)
    # With measured noise: a staircase of rounding is not a kink.
    noise = 4 * round_off(policy, eps_f, np.abs(f0)[None, :], noise_level) / step[:, None]
    size = np.fmax(np.abs(best), 0.0)  # 0 where no estimate
    significant = (np.abs(last) > policy.kink_significance * noise) & (np.abs(last) > 1e-6 * size)
    converged = best_err <= 1e-3 * (size + np.abs(last))
    significant &= converged
    return np.where(constant & significant & np.isfinite(last), last, 0.0)


def sizes(x: np.ndarray) -> np.ndarray:
    """The scale of each coordinate: |x_i|, or a thousandth of the typical magnitude where x_i
    is zero or tiny (1 when all of x is zero); see `start_steps`."""
    magnitude = np.abs(x)
    nonzero = magnitude[magnitude > 0]
    # (np.mean is this sum over the count, at several times the cost on a small x.)
    typical = float(np.exp(np.log(nonzero).sum() / nonzero.size)) if nonzero.size else 1.0
    size: np.ndarray = np.maximum(magnitude, 1e-3 * typical)
    return size


def start_steps(
    x: np.ndarray, directions: Directions, factor: float, size: np.ndarray | None = None
) -> np.ndarray:
    """First ladder step per direction: `factor` times the size of x along the direction.

    For a coordinate direction this is factor·|x_i|. Zero or tiny entries use a thousandth of
    the typical (geometric-mean) magnitude of x instead, and x of all zeros uses 1. The ladder
    adapts from there (Note: Step choice), so this only has to be in the right decades: too
    large costs a few coarse jumps, too small would lose digits to round-off for good.
    `size`: `sizes(x)`, where the caller has it already.
    """
    size = sizes(x) if size is None else size
    if isinstance(directions, Coordinates):
        reach = size[directions.indices]
    else:
        weight = np.abs(directions)
        reach = weight @ size / weight.sum(axis=1) / weight.max(axis=1)
    # A power of two, like every ratio on the ladder: x ± h is then exact (Note: Exact steps).
    steps: np.ndarray = 2.0 ** np.floor(np.log2(factor * reach))
    return steps


def exact_directions(
    x: np.ndarray,
    directions: np.ndarray,
    largest_factor: float,
    policy: Ladder = DEFAULT,
    size: np.ndarray | None = None,
) -> np.ndarray:
    """Directions nudged so that every ladder point x + o·h·d is exactly representable.

    See Note: Exact steps. `largest_factor` is the largest start factor any ladder along these
    directions will use; each component of h_max·d becomes a multiple of 2^policy.snap_halvings
    ulps of its coordinate, so the steps h_max/2^k keep it a multiple of one ulp. The change
    to the direction is below 2^policy.snap_halvings·ulp(x_i)/h_max, about 1e-3 of a component.
    `size`: `sizes(x)`, where the caller has it already.
    """
    h_max = start_steps(x, directions, largest_factor, size)[:, None]
    quantum = 2.0**policy.snap_halvings * np.spacing(np.abs(x))[None, :]
    with np.errstate(over="ignore", invalid="ignore"):
        units = h_max * directions / quantum
    # Where x_i is 0 (x_i + h·d_i is then exact) or the quantum is below the component's own
    # resolution, there is nothing to snap.
    keep = (x[None, :] == 0) | ~(np.abs(units) < 2.0**52)
    snapped: np.ndarray = np.where(
        keep, directions, np.round(np.where(keep, 0.0, units)) * quantum / h_max
    )
    return snapped


STRADDLE_SIGMAS = 4.0
"""A slope jump this many times its round-off can testify to a kink straddled."""

EARLY_ROWS = 2
EARLY_RTOL = 1e-12
"""Early agreement: an extrapolation that matches every expected value this closely."""

HIDDEN_UNIT = 1.0
"""The size of an intermediate whose rounding a flat row cannot rule out (Note: Flat rows)."""

NOISE_LIKE = 2.0
"""A tableau error up to this many times the noise model's is counted as noise."""

LINEAR_PROBE = 2.0**-10
"""Exactly linear rows are probed once at this fraction of their step (Note: Exactly linear
rows)."""
KINK_PROBE_SIGNAL = 8.0
"""A kink probe's step keeps the claimed jump this many times above its round-off."""
KINK_PROBE_DEPTH = 2.0**-20
"""… and is never below this fraction of the rows' step (noise-free code allows any step)."""
KINK_GONE = 0.25
"""At the probe's step a straddled kink's jump falls below this fraction of the claimed one."""


@dataclass(frozen=True)
class _Probes:
    """One more pair of samples x ± h·d along chosen directions, to test what a ladder's rows
    claim: exact linearity (Note: Exactly linear rows) and a kink at x (Note: Kink probe)."""

    evaluate: BatchFn
    x: np.ndarray
    f0: np.ndarray
    directions: Directions

    def pair(self, which: np.ndarray, h: np.ndarray) -> np.ndarray:
        """Samples (len(which), 2, m) at x - h·d and x + h·d for the directions `which`."""
        points = points_along(self.x, self.directions[which], PAIR, h)
        samples: np.ndarray = self.evaluate(points).reshape(len(which), 2, -1)
        return samples

    def linear(self, result: Estimates, eps_f: float) -> Estimates:
        """Where the last rows agreed bitwise, one central difference at a far smaller step
        must agree too, or the estimate's error grows to the disagreement."""
        if result.linear is None or not result.linear.any():
            return result
        which = np.flatnonzero(result.linear)
        h = result.step[which] * LINEAR_PROBE
        samples = self.pair(which, h)
        slope = (samples[:, 1] - samples[:, 0]) / (2 * h[:, None])
        scale = np.maximum(np.abs(samples).max(axis=1), np.abs(self.f0)[None, :])
        noise = 4 * eps_f * scale / h[:, None]
        with np.errstate(invalid="ignore"):
            gap = np.abs(slope - result.value[which])
        grown = np.where(gap > noise + 4 * result.error[which], gap, result.error[which])
        error = result.error.copy()
        error[which] = np.where(np.isfinite(gap), np.maximum(grown, result.error[which]), np.inf)
        return replace(result, error=error, evaluations=result.evaluations + 2 * len(which))

    def kinks(
        self, result: Estimates, eps_f: float, policy: Ladder, noise_level: np.ndarray | None
    ) -> Estimates:
        """Where a kink was found, the slope jump at a far smaller step must be there too, or
        the rows straddled kinks nearby: no kink at x, and no trustworthy estimate."""
        kinked = np.isfinite(result.kink) & (result.kink != 0)
        which = np.flatnonzero(kinked.any(axis=1))
        if not which.size:
            return result
        level = None if noise_level is None else noise_level[which]
        per_value = round_off(policy, eps_f, np.abs(self.f0)[None, :], level)
        with np.errstate(divide="ignore", invalid="ignore"):
            needed = KINK_PROBE_SIGNAL * 4 * per_value / np.abs(result.kink[which])
        smallest = np.where(kinked[which], needed, 0.0).max(axis=1)
        with np.errstate(divide="ignore"):
            h = np.maximum(2.0 ** np.ceil(np.log2(smallest)), KINK_PROBE_DEPTH * result.step[which])
        room = h <= result.step[which] / 8  # else the probe would straddle what the rows did
        which, h = which[room], h[room]
        if not which.size:
            return result
        samples = self.pair(which, h)
        jump = (samples[:, 1] - 2 * self.f0[None, :] + samples[:, 0]) / h[:, None]
        with np.errstate(invalid="ignore"):
            gone = kinked[which] & (np.abs(jump) < KINK_GONE * np.abs(result.kink[which]))
        kink, error = result.kink.copy(), result.error.copy()
        kink[which] = np.where(gone, 0.0, kink[which])
        error[which] = np.where(gone, np.inf, error[which])
        evaluations = result.evaluations + 2 * len(which)
        return replace(result, kink=kink, error=error, evaluations=evaluations)


RESTART_SCALE = 1e-3
"""Entries below this fraction of their direction's largest estimate do not restart a ladder."""


def finite_size(values: np.ndarray) -> np.ndarray:
    """|values|, and 0 where a value is not finite."""
    size: np.ndarray = np.where(np.isfinite(values), np.abs(values), 0.0)
    return size


def _largest(value: np.ndarray) -> np.ndarray:
    """The largest finite |estimate| per direction (0 where none is finite)."""
    largest: np.ndarray = finite_size(value).max(axis=1, initial=0.0)
    return largest


def first_steps(
    x: np.ndarray, directions: Directions, policy: Ladder, min_start: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The first step of each direction's ladder, without and with the floor `min_start`
    (d,) from the round-off the caller expects (Note: Step choice)."""
    size = sizes(x)
    if policy.absolute:
        plain = start = np.full(len(directions), 2.0 ** np.floor(np.log2(policy.start_factor)))
    else:
        plain = start = start_steps(x, directions, policy.start_factor, size)
    if min_start is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            floor = 2.0 ** np.ceil(np.log2(np.where(min_start > 0, min_start, 0.0)))
        start = np.minimum(np.maximum(start, floor), start_steps(x, directions, 0.5, size))
    return plain * policy.grid, start * policy.grid


def estimate(
    evaluate: BatchFn,
    x: np.ndarray,
    f0: np.ndarray,
    directions: Directions,
    method: FiniteDifference,
    *,
    eps_f: float,
    policy: Ladder = DEFAULT,
    noise_level: np.ndarray | None = None,
    min_start: np.ndarray | None = None,
    expected: tuple[np.ndarray, ...] = (),
) -> Estimates:
    """Derivatives along `directions`: one ladder each, a second one where the first fell short.

    `expected`: see `ladder` (Note: Early agreement); only the first ladder uses it.

    * Round-off limited (a large offset such as 1e8 + …): a second ladder from a step
      `policy.noisy_restart` times larger, where high-order extrapolation keeps the truncation error
      small while the noise shrinks with the step.
    * Non-finite down the whole ladder (sqrt or log at the edge of its domain): the forward
      and then the backward stencil of the same order.

    Each entry keeps whichever estimate has the smaller error.
    """
    if not isinstance(directions, Coordinates) and not directions.any(axis=1).all():
        raise ValueError("a direction is zero")
    plain, start = first_steps(x, directions, policy, min_start)
    result = ladder(
        evaluate,
        x,
        f0,
        directions,
        start,
        method,
        eps_f=eps_f,
        policy=policy,
        noise_level=noise_level,
        expected=expected,
    )
    retries: list[tuple[np.ndarray, np.ndarray, FiniteDifference]] = []
    # Round-off limited and an order of magnitude short of the target: worth a second ladder.
    # The target is relative to the entry, or to its direction's largest entry where that is
    # far larger: an exact zero beside a diagonal of ones (every elementwise op) is resolved
    # by its first ladder, and restarting each such direction doubled a full check's cost.
    relevant = np.maximum(np.abs(result.value), RESTART_SCALE * _largest(result.value)[:, None])
    limited = (result.noise > 0) & (result.error > 10 * policy.rtol * relevant)
    noisy = np.flatnonzero(limited.any(axis=1))
    if noisy.size:
        retries.append((noisy, plain[noisy] * policy.noisy_restart, method))
    stuck = np.flatnonzero(result.nonfinite & ~np.isfinite(result.error).all(axis=1))
    if stuck.size and method.kind == "central":
        retries += [(stuck, start[stuck], side(method.order)) for side in (forward, backward)]
    if not retries:
        return result
    value, error, step = result.value.copy(), result.error.copy(), result.step.copy()
    noise, nonfinite, evaluations = result.noise.copy(), result.nonfinite.copy(), result.evaluations
    for which, first, stencil in retries:
        retry = ladder(
            evaluate,
            x,
            f0,
            directions[which],
            first,
            stencil,
            eps_f=eps_f,
            policy=policy,
            noise_level=None if noise_level is None else noise_level[which],
        )
        evaluations += retry.evaluations
        # A ladder from a larger start must agree with what the smaller steps saw: a
        # staircase (floor, round) or a sawtooth (fmod) looks exactly linear at steps that
        # straddle its jumps, with a tiny error bar (Note: Step choice).
        with np.errstate(invalid="ignore"):
            agrees = np.abs(retry.value - value[which]) <= 2 * (retry.error + error[which])
        better = (retry.error < error[which]) & (agrees | ~np.isfinite(error[which]))
        value[which] = np.where(better, retry.value, value[which])
        error[which] = np.where(better, retry.error, error[which])
        noise[which] = np.where(better, retry.noise, noise[which])
        step[which] = np.where(better.any(axis=1), retry.step, step[which])
        nonfinite[which] &= retry.nonfinite | ~better.any(axis=1)
    return Estimates(value, error, step, result.kink, nonfinite, noise, evaluations)
