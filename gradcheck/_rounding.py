"""The measured round-off of analytic derivatives, for entries the budget alone would fail.

Note: Measured analytic noise
    The error budget models the analytic side's rounding from what the checker can see: a few
    ulps of the entry and of the check's largest entry (`_compare`). Derivative code can round
    at a scale nothing visible reveals: torch's layer_norm backward over one element computes
    an exact 0 as x·rstd - mean·rstd, terms near 1500, and returns ±1e-13; corrcoef of
    two-point series (exactly ±1, derivative 0) returns ±4e-16. Finite differences resolve the
    0 exactly, so the modelled budget calls those entries wrong.

    Rounding shows itself the way f's own noise does (`_fd.noise`): it is not a smooth
    function of x. Evaluated at x ± δ·p for a tiny δ (2^-30 to 2^-42 of each coordinate's
    size), a derivative changes by δ·(its own derivative) on each side, so the second
    difference a(x + δp) + a(x - δp) - 2·a(x) is O(δ²) for any formula, right or wrong, and is
    pure rounding otherwise. Its size at three δ (the median, so that one δ straddling a
    kink cannot speak for all) is the analytic side's measured noise. It joins the budget like
    the modelled rounding, for entries no larger than a few times that noise (an exact 0
    computed by cancellation); an entry it is as large as stays unresolved, never a pass. A
    sizeable derivative that is this noisy is computed badly (a naive second difference as
    a Hessian, 1e-2 of noise): there the noise is the finding, and it gets no credit.

    Only entries that fail on the modelled budget are measured: seven analytic evaluations of
    their rows, on checks that would otherwise fail.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._fd import sizes

SHIFTS = (2.0**-30, 2.0**-36, 2.0**-42)  # relative to each coordinate's size
GARBAGE_SIGMAS = 4.0  # an entry within this many σ of 0 is rounding garbage
SEED = 20261202  # the sign patterns: fixed, so a check's verdict does not depend on its seed

AnalyticAt = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(point, mask) -> the analytic entries at that point: at least where mask is True (the
rows or columns they sit in may come along; the rest is NaN)."""


def analytic_noise(x0: np.ndarray, at: AnalyticAt, mask: np.ndarray) -> np.ndarray:
    """The round-off of the analytic entries in `mask` (0 elsewhere); see the module Note.

    An evaluation that raises or is not finite leaves those entries unmeasured (0): the
    budget then stays the modelled one, and the verdict with it.
    """
    noise = np.zeros(mask.shape)
    signs = np.random.default_rng(SEED).choice([-1.0, 1.0], size=(len(SHIFTS), x0.size))
    try:
        center = at(x0, mask)
        seconds = [
            at(x0 + delta * pattern, mask) + at(x0 - delta * pattern, mask) - 2 * center
            for delta, pattern in zip(SHIFTS, signs * sizes(x0)[None, :], strict=True)
        ]
    except Exception:  # a point the user's code rejects: no measurement, no credit
        return noise
    with np.errstate(invalid="ignore"):
        sigma = np.median(np.abs(np.stack(seconds)), axis=0) / np.sqrt(6.0)
    # Only an entry at its own noise level is rounding of an exact 0; a sizeable derivative
    # that is noisy is computed badly (a naive finite difference as a Hessian), and its noise
    # is the finding, not an excuse.
    garbage = mask & np.isfinite(sigma) & (np.abs(center) <= GARBAGE_SIGMAS * sigma)
    measured: np.ndarray = np.where(garbage, sigma, noise)
    return measured
