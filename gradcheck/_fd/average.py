"""Averaging round-off away: a least-squares derivative from many samples.

Note: Averaged round-off
    Where round-off alone limits an estimate, no choice of step helps: c + Σ sin x with
    c = 1e8 rounds every value to a multiple of 1.5e-8, and the best Richardson estimate can
    vouch for 2e-7 to 5e-7 of a derivative of 1 (allowed 3x), so a gradient 1e-6 off passes.
    That bound is a worst case (every sample's rounding in the direction that hurts most),
    while roundings at different points are nearly independent: averaged over many samples
    they shrink like 1/sqrt(N). So an entry whose bound is round-off, and too coarse to tell
    such an error, is estimated once more from SIDE samples on each side of x at steps
    j/SIDE of a window H, j = 1 … SIDE: the odd parts (g(t_j) - g(-t_j))/2 of
    g(t) = f(x + t·d) are fitted by least squares with the odd powers t, t³, …,
    t^(2·TERMS-1), and the coefficient of t is the derivative. Its standard error comes from
    the fit's own residuals, so it counts the noise as it is at these samples (and any
    misfit with it), not as modelled; the bound is SIGMAS standard errors. The same fit on
    the inner half of the window must agree within the two bounds combined, or truncation
    (a length scale below the window) has biased the fit and the estimate is not used.
    The window is WINDOW times the step the entry's ladder settled at, whose rows showed f
    smooth that far (such entries are contested first, so the thorough ladders' larger
    starts have had their say on that step); the steps are j·H/SIDE with SIDE a power of
    two, so the points are exact (Note: Exact steps in `ladder`). A fit whose residuals are
    all zero (f did not change by one bit across the window) proves nothing about rounding
    and is not used either. Only code that computes in float64 is averaged: a coarser
    precision (float32 inside) is shared by every sample alike.
    Who gets it (`_compare`): entries whose budget is set by the numbers' round-off, above
    COARSE (1e-8) of the entry and of the check's scale, and whose difference is within
    AVERAGE_REACH of it; at most AVERAGED_DIRECTIONS directions per comparison (`_judge`),
    2·SIDE evaluations each. Its estimate replaces the ladders' only where it is tighter and
    the two agree (`Numbers.tighten`).
    Measured on 1e8 + Σ sin x (100 draws of 4 coordinates, settled steps of 1/8): the
    bound's median is 4.8e-8 and no error exceeded 0.78 of it (0.85 at steps of 1/32, bound
    1.9e-7). In the check, at c = 1e8 exactly: δ = 1e-6 caught on 34 of 40 draws (0
    before); the six left are entries whose first ladder's budget is over 16x the
    difference, never contested (AVERAGE_REACH = 64 catches all 40 but costs the offset
    family 49 evaluations per coordinate instead of 11). A correct gradient there takes
    ~330 evaluations for 4 coordinates instead of ~60; the power suite is unchanged.
"""

from __future__ import annotations

import numpy as np

from .._differentiable import Differentiable
from .estimate import chunk_size
from .ladder import Directions, Estimates, points_along

SIDE = 32
TERMS = 4
SIGMAS = 4.0
WINDOW = 4.0  # the window, in units of the step the entry's ladder settled at


def _fit(odd: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The t-coefficient of the least-squares fit of odd (..., K) at u (K,) by the odd powers
    of u, and its standard error from the residuals."""
    design = np.stack([u ** (2 * i + 1) for i in range(TERMS)], axis=1)  # (K, TERMS)
    inverse = np.linalg.inv(design.T @ design)
    coefficients = odd @ (inverse @ design.T).T  # (..., TERMS)
    residuals = odd - coefficients @ design.T
    variance = (residuals * residuals).sum(axis=-1) / (len(u) - TERMS)
    return coefficients[..., 0], np.sqrt(variance * inverse[0, 0])


def averaged(fn: Differentiable, directions: Directions, settled_steps: np.ndarray) -> Estimates:
    """First derivatives along `directions` by least squares over 2·SIDE samples within
    WINDOW times `settled_steps` (d,) of x (Note: Averaged round-off); error inf where the
    fit cannot vouch for itself."""
    d, m = len(directions), fn.m
    window = WINDOW * settled_steps
    j = np.arange(1, SIDE + 1, dtype=float)
    offsets = np.concatenate([-j[::-1], j]) / SIDE
    size = chunk_size(fn, 2 * SIDE)  # the points of one chunk stay under the memory bound
    samples = np.concatenate(
        [
            fn.values(points_along(fn.x0, directions[i : i + size], offsets, window[i : i + size]))
            for i in range(0, d, size)
        ]
    ).reshape(d, 2 * SIDE, m)
    with np.errstate(invalid="ignore", over="ignore"):
        odd = ((samples[:, SIDE:] - samples[:, SIDE - 1 :: -1]) / 2).transpose(0, 2, 1)
        u = j / SIDE
        whole, error = _fit(odd, u)
        half, error_half = _fit(odd[..., : SIDE // 2], 2 * u[: SIDE // 2])
        value = whole / window[:, None]
        error = SIGMAS * error / window[:, None]
        inner = half / (window[:, None] / 2)
        error_half = SIGMAS * error_half / (window[:, None] / 2)
        agree = np.abs(value - inner) <= np.hypot(error, error_half)
    finite = np.isfinite(samples).all(axis=1)
    usable = finite & agree & (error > 0)
    error = np.where(usable, error, np.inf)
    return Estimates(
        value=value,
        error=error,
        step=settled_steps.astype(float),
        kink=np.zeros((d, m)),
        nonfinite=~finite.all(axis=1),
        noise=np.where(usable, error, 0.0),
        evaluations=2 * SIDE * d,
    )
