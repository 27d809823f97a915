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

Note: Hidden resolution
    A function's values can be rounded far more coarsely than eps·|f|: log(cosh(x)) near
    x = 1e-8 is computed from cosh(x) = 1 + x²/2, which is rounded to a whole number of
    eps ≈ 2.2e-16, so f moves in steps of ~1e-16 whatever its own size (5e-17 there), and
    is exactly 0 on a whole interval around x. At a spacing tied to that tiny |x| not one
    bit of f changes, the table says nothing, and the ladder's noise model eps·|f| says
    1e-32: the flat samples "confirm" a derivative of 0 where the truth is 1e-8. So a table
    without a single changed bit is measured again at HIDDEN_SPACING in absolute units (the
    length scale of cosh, exp and 1 + x near 0), where the quantum shows as noise; that
    second table counts only if it qualifies as noise (a kink it happens to cross does not).
    The spacing is not a power of two: at exactly 2^-20 the points of a quadratic line up
    with the binary grid of cosh and the rounding errors vanish.

Note: Aligned rounding
    A value rounded at an intermediate's scale can also move by whole quanta in step with
    the spacing: (c + Σ tanh x) - c with c = 4.6e7 is rounded to multiples of 7.5e-9, and at
    the spacing of 2^-20 it moved by exactly 9 quanta per point, so the table was a straight
    line with no noise at all, while any step the ladders take sees rounding of 2.2e-9
    (σ). Counted as noiseless, its ladders claimed 1.8e-11 where the truth was 1e-7 off, and
    the exact gradient failed by 2.6e3x. So a table whose values all move by exactly the
    same amount (but not by zero) is measured again, in one call, at 1.37 and 1.73 times
    its spacing (UNALIGNED): at most 1.73 times as far from x, so rarely across a kink or
    jump the first table did not reach (a sawtooth's linear stretch stays linear), and no
    rate of whole quanta per point stays whole at both; the larger σ of the two counts, each
    only if it is plainly noise. A function that is truly linear along the direction reads
    only its own rounding there. The cost is one call of 18 points, for such tables only.
"""

from __future__ import annotations

from math import comb
from typing import NamedTuple

import numpy as np

from .._differentiable import Differentiable
from .ladder import HIDDEN_UNIT, Directions, exact_directions, points_along, sizes, start_steps

POINTS = 9
LEVELS = 6
SPACING = 2.0**-20  # the sampling step, relative to the size of x along the direction
AGREE = 4.0
HIDDEN_SPACING = 2.0**-20 * 1.1
"""The second look's spacing in absolute units (Note: Hidden resolution); not a power of two,
so that the points do not line up with the binary grid of an intermediate near 1."""


class Noise(NamedTuple):
    """What `measure_noise` found.

    Attributes:
        sigma: (m,) σ of f's round-off per output; 0 where unclear.
        hidden: it was measured on the second look (Note: Hidden resolution): rounding of an
            intermediate, absolute, so sigma/|f| says nothing about f's arithmetic precision.
    """

    sigma: np.ndarray
    hidden: bool = False


class NoiseLook(NamedTuple):
    """Where `measure_noise` samples f: POINTS points x + i·h·direction, i = 1 … POINTS.

    Drawn apart from the measurement so that a caller can evaluate the points in a call it
    makes anyway (the preflight's repeats at x0): a small check's cost is its number of calls
    into the framework.

    Attributes:
        direction: (n,) the direction; all zero where x offers none (then no points).
        h: the spacing along it.
        points: (POINTS, n) the points, or (0, n).
    """

    direction: np.ndarray
    h: float
    points: np.ndarray


def noise_look(fn: Differentiable, rng: np.random.Generator) -> NoiseLook:
    """Draw the direction of `measure_noise`'s table (one draw from rng) and its points."""
    # Each coordinate moves in proportion to its own size: inputs of 1e6 next to weights of
    # 0.3 must not make the weights' steps large enough to cross a relu's kink.
    size = sizes(fn.x0)
    scaled = rng.standard_normal((1, fn.n)) * size[None, :]
    direction = exact_directions(fn.x0, scaled / np.abs(scaled).max(), 1.0, size=size)[0]
    if not direction.any():
        return NoiseLook(direction, 0.0, np.empty((0, fn.n)))
    h = float(start_steps(fn.x0, direction[None, :], SPACING, size)[0])
    return NoiseLook(direction, h, _points(fn.x0, direction, h))


def measure_noise(
    fn: Differentiable,
    rng: np.random.Generator,
    look: NoiseLook | None = None,
    table: np.ndarray | None = None,
) -> Noise:
    """σ of f's round-off noise per output, measured along one random direction; 0 if unclear.

    Costs POINTS evaluations (twice that where not one bit of f changed: Note: Hidden
    resolution), none of them where `table` holds f at `look`'s points already; `look` is
    drawn from rng unless given.
    """
    look = look if look is not None else noise_look(fn, rng)
    if not look.direction.any():
        return Noise(np.zeros(fn.m))
    table = table if table is not None else fn.values(look.points)
    if not np.isfinite(table).all():
        return Noise(np.zeros(fn.m))
    changed = bool((table != table[0]).any())
    if changed and not (np.diff(table, 2, axis=0) != 0).any():
        # Every value moved by exactly the same amount: f is linear along the direction, or
        # rounded at an intermediate's scale in step with the spacing (Note: Aligned rounding).
        points = np.concatenate([_points(fn.x0, look.direction, look.h * r) for r in UNALIGNED])
        tables = fn.values(points).reshape(len(UNALIGNED), POINTS, -1)
        if not np.isfinite(tables).all():
            return Noise(np.zeros(fn.m))
        return Noise(np.max([_sigma(t, strict=True) for t in tables], axis=0), hidden=True)
    if changed or look.h >= HIDDEN_SPACING:
        return Noise(_sigma(table, strict=False))
    # Not one bit changed: look again where an intermediate of size 1 would show its
    # rounding, and believe only a table that is plainly noise there.
    again = _second_look(fn, look.direction, HIDDEN_SPACING / float(np.abs(look.direction).max()))
    return Noise(np.zeros(fn.m)) if again is None else Noise(again, hidden=True)


def _second_look(fn: Differentiable, direction: np.ndarray, h: float) -> np.ndarray | None:
    """σ from a table at spacing h that counts only if it is plainly noise; None where f is
    not finite there."""
    table = fn.values(_points(fn.x0, direction, h))
    return _sigma(table, strict=True) if np.isfinite(table).all() else None


def _points(x: np.ndarray, direction: np.ndarray, h: float) -> np.ndarray:
    """x + i·h·direction, i = 1 … POINTS: (POINTS, n)."""
    steps = h * np.arange(1, POINTS + 1)
    points: np.ndarray = x[None, :] + steps[:, None] * direction[None, :]
    return points


def _sigma(table: np.ndarray, strict: bool) -> np.ndarray:
    """ECnoise's σ per output from a table of equally spaced values (Note: Measured noise);
    where no level qualifies, 0 if `strict`, else the median of levels 3 … 6."""
    unit = np.maximum(np.abs(table).max(axis=0), np.finfo(np.float64).tiny)
    table = table / unit  # squares of values near 1e300 would overflow
    # Written for small tables: one check measures a few, and NumPy's per-call cost is most
    # of their time (np.diff and np.mean are these slices and sums, with more overhead).
    squares, noisy = [], []
    for j in range(1, LEVELS + 1):
        table = table[1:] - table[:-1]
        squares.append((table * table).sum(axis=0) / (len(table) * comb(2 * j, j)))
        signs = np.sign(table)
        noisy.append((signs[1:] != signs[:-1]).any(axis=0))
    sigma = np.sqrt(np.array(squares))  # (LEVELS, m)
    # Where no level qualifies, the steps are still far too small for the smooth part to
    # matter from the third difference on: the median of those levels stands in (never 0).
    # (The median of those four levels: the mean of the middle two, as np.median takes it.)
    middle = np.sort(sigma[2:], axis=0)[1:3]
    fallback = np.zeros(table.shape[1]) if strict else (middle[0] + middle[1]) / 2
    # The first level j whose estimate agrees with levels j+1, j+2 and whose differences
    # change sign, per output (vectorised: a table may have a column per direction and output).
    low = np.minimum(np.minimum(sigma[:-2], sigma[1:-1]), sigma[2:])  # (LEVELS-2, m)
    high = np.maximum(np.maximum(sigma[:-2], sigma[1:-1]), sigma[2:])
    qualifies = (low > 0) & (high <= AGREE * low) & np.array(noisy[: LEVELS - 2])
    first = qualifies.argmax(axis=0)
    chosen = sigma[first, np.arange(sigma.shape[1])]
    result = np.where(qualifies.any(axis=0), chosen, fallback)
    sigma_f: np.ndarray = result * unit
    return sigma_f


UNALIGNED = (1.37, 1.73)
"""The second looks' spacings where the first table was exactly linear, in units of the
first's (Note: Aligned rounding): no rate of whole quanta per point stays whole at both."""

LOCAL_SPACINGS = (2.0**-10, 2.0**-14)
LOCAL_EVALUATIONS = len(LOCAL_SPACINGS) * POINTS
"""The spacings of `local_noise`, relative to the size of x along each direction (times 1.1,
so not a power of two): wide enough for f to move by several quanta of an intermediate."""

NOISE_SIGMAS = 3.0
"""Standard deviations of measured noise that the ladders' noise level counts."""


LOCAL_ULPS = 16.0
"""The most rounding `local_noise` credits: this many ulps of an intermediate the size of
HIDDEN_UNIT or of f, whichever is larger. A table that varies more straddles a jump."""


def local_noise(fn: Differentiable, f0: np.ndarray, directions: Directions) -> np.ndarray:
    """σ of f's round-off per (direction, output), measured along each direction (strictly:
    0 where a table is not plainly noise). Costs LOCAL_EVALUATIONS per direction; the caller
    bounds how many directions go at once (the points are (directions·POINTS, n)).

    The check's one measurement (`measure_noise`) looks along a single direction at a spacing
    of 2^-20, where a value rounded at an intermediate's scale can move by a whole number of
    quanta per point and look smooth (a cross-entropy near 0: log(1 + e) with 1 + e rounded
    to eps). Contested entries are worth a look of their own, at coarser spacings that are
    not powers of two. Rounding looks the same at both; a table that straddles a jump of a
    staircase does not, so the smaller of the two counts, and never more than LOCAL_ULPS of
    the largest intermediate that could hide (floor at 1234.56 seen at a spacing of 1: its
    jumps are not round-off, and counted as such they would push the ladder to steps where
    the staircase looks linear).
    """
    offsets = np.arange(1, POINTS + 1, dtype=float)
    d, m = len(directions), fn.m
    sigma = np.full((d, m), np.inf)
    for spacing in LOCAL_SPACINGS:
        steps = start_steps(fn.x0, directions, spacing) * 1.1
        points = points_along(fn.x0, directions, offsets, steps)
        tables = fn.values(points).reshape(d, POINTS, m).transpose(1, 0, 2).reshape(POINTS, -1)
        finite = np.isfinite(tables).all(axis=0)
        seen = np.zeros(d * m)
        seen[finite] = _sigma(tables[:, finite], strict=True)
        sigma = np.minimum(sigma, seen.reshape(d, m))
    most = LOCAL_ULPS * fn.eps * np.maximum(np.abs(f0), HIDDEN_UNIT)
    capped: np.ndarray = np.minimum(sigma, most[None, :])
    return capped
