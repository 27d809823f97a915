"""Measuring a function's round-off noise (Moré & Wild's ECnoise), once per check.

Note: Measured noise
    The engine's noise model, eps·(|f| + Σ|x_i·∂_i f|), assumes a value is rounded a few times
    at its own scale. A sum of a thousand terms, or code that rounds its arguments inside,
    is noisier than that, and a budget built on the model alone would call the difference a
    wrong gradient. So the noise is measured: f at 9 points x + i·h·v, i = 1…9, a step far
    below any length scale of f (each coordinate moves by about 2^-20 of its own size); the
    j-th differences of pure noise have variance C(2j, j)·σ², while the smooth part vanishes
    like h^j. Levels j = 1…6 each give an estimate σ_j = sqrt(mean(Δ^j f²)·(j!)²/(2j)!); the
    first level whose estimate agrees with the next two within a factor 4, and whose
    differences change sign (so they are noise, not a smooth trend), is the answer. Where no
    level qualifies, the median of levels 3…6 stands in: at these steps the smooth part is
    negligible there, and a measurement that gave up must not read as "no noise".
    Moré, J. J. and Wild, S. M., "Estimating computational noise", SIAM J. Sci. Comput. 33
    (2011).
    The point itself (i = 0) is left out: where f jumps exactly at x (a step function at its
    step, `where(x > c, …)` at c), f(x) is off the curve the other points lie on, and the
    jump would read as enormous noise that hides every other entry's error.
"""

from __future__ import annotations

from math import comb

import numpy as np

from .._differentiable import Differentiable
from .ladder import exact_directions, sizes, start_steps

POINTS = 9
LEVELS = 6
SPACING = 2.0**-20  # the sampling step, relative to the size of x along the direction
AGREE = 4.0


def measure_noise(fn: Differentiable, rng: np.random.Generator) -> np.ndarray:
    """σ of f's round-off noise per output, measured along one random direction; 0 if unclear.

    Costs POINTS evaluations.
    """
    # Each coordinate moves in proportion to its own size: inputs of 1e6 next to weights of
    # 0.3 must not make the weights' steps large enough to cross a relu's kink.
    scaled = rng.standard_normal((1, fn.n)) * sizes(fn.x0)[None, :]
    direction = exact_directions(fn.x0, scaled / np.abs(scaled).max(), 1.0)[0]
    if not direction.any():
        return np.zeros(fn.m)
    h = float(start_steps(fn.x0, direction[None, :], SPACING)[0])
    steps = h * np.arange(1, POINTS + 1)
    table = fn.values(fn.x0[None, :] + steps[:, None] * direction[None, :])  # (POINTS, m)
    if not np.isfinite(table).all():
        return np.zeros(fn.m)
    unit = np.maximum(np.abs(table).max(axis=0), np.finfo(np.float64).tiny)
    table = table / unit  # squares of values near 1e300 would overflow
    sigmas, noisy = [], []
    for j in range(1, LEVELS + 1):
        table = np.diff(table, axis=0)
        gamma = 1.0 / comb(2 * j, j)
        sigmas.append(np.sqrt(gamma * np.mean(table**2, axis=0)))
        signs = np.sign(table)
        noisy.append((signs[1:] != signs[:-1]).any(axis=0))
    sigma = np.array(sigmas)  # (LEVELS, m)
    # Where no level qualifies, the steps are still far too small for the smooth part to
    # matter from the third difference on: the median of those levels stands in (never 0).
    result: np.ndarray = np.median(sigma[2:], axis=0) * unit
    for out in range(fn.m):
        for j in range(LEVELS - 2):
            level = sigma[j : j + 3, out]
            if level.min() > 0 and level.max() <= AGREE * level.min() and noisy[j][out]:
                result[out] = level[0] * unit[out]
                break
    return result
