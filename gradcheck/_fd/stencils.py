"""Finite-difference stencils: exact weights and the powers of their truncation error.

A stencil estimates the q-th derivative of g(t) at t = 0 from samples at integer multiples of
a step h:  D(h) = h^-q · Σ_j w_j g(o_j h).  Taylor-expanding g around 0 gives

    D(h) = g^(q)(0) + Σ_k  M_k / k! · g^(k)(0) · h^(k-q),     M_k = Σ_j w_j o_j^k,

so the weights are the solution of M_k = k!·[k = q] for k = 0 … p-1 (p points), computed here
in exact rational arithmetic, and the truncation error is a series in the powers k - q for which
the moment M_k does not vanish (2, 4, 6, … for central stencils; 1, 2, 3, … for one-sided
ones). Richardson extrapolation (see `_fd.ladder`) removes those powers one by one, which is
why a stencil carries them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction
from math import factorial

from .._errors import UsageError

MAX_ORDER = 4
_SERIES_TERMS = 8  # truncation-error powers kept: more than any extrapolation uses


@dataclass(frozen=True, slots=True)
class FiniteDifference:
    """A finite-difference stencil for the `order`-th derivative.

    Attributes:
        offsets: sample points, in multiples of the step.
        weights: the weights for a unit step; the estimate is Σ w·g(o·h) / h**order.
        order: which derivative the stencil estimates (1 to 4).
        powers: exponents of h in its truncation error, smallest first.
    """

    offsets: tuple[int, ...]
    weights: tuple[float, ...]
    order: int
    powers: tuple[int, ...]

    @property
    def uses_center(self) -> bool:
        """Whether the stencil needs g(0), which the engine evaluates once and shares."""
        return any(o == 0 and w != 0 for o, w in zip(self.offsets, self.weights, strict=True))

    @property
    def kind(self) -> str:
        """ "central", "forward" or "backward": the side of 0 the samples lie on."""
        if min(self.offsets) >= 0:
            return "forward"
        if max(self.offsets) <= 0:
            return "backward"
        return "central"


@functools.cache  # exact rational arithmetic costs a millisecond; every check asks again
def _build(offsets: tuple[int, ...], order: int) -> FiniteDifference:
    if not 1 <= order <= MAX_ORDER:
        raise UsageError(f"derivative order must be 1 to {MAX_ORDER}, got {order}")
    p = len(offsets)
    # Solve the Vandermonde system  Σ_j w_j o_j^k = k!·[k = order]  exactly (Gauss-Jordan).
    rows = [
        [Fraction(o) ** k for o in offsets] + [Fraction(factorial(k) if k == order else 0)]
        for k in range(p)
    ]
    for col in range(p):
        pivot = next(r for r in range(col, p) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        rows[col] = [v / rows[col][col] for v in rows[col]]
        for r in range(p):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    weights = [rows[j][p] for j in range(p)]
    powers: list[int] = []
    k = p
    while len(powers) < _SERIES_TERMS:
        if sum(w * Fraction(o) ** k for w, o in zip(weights, offsets, strict=True)) != 0:
            powers.append(k - order)
        k += 1
    return FiniteDifference(offsets, tuple(float(w) for w in weights), order, tuple(powers))


@functools.cache  # every ladder asks for its stencil
def central(order: int = 1, *, points: int | None = None) -> FiniteDifference:
    """A central stencil: symmetric samples, truncation error in even powers of h.

    Args:
        order: the derivative to estimate, 1 to 4.
        points: number of samples (odd, or even for odd orders without the centre);
            default the fewest that work: 3 for orders 1-2, 5 for orders 3-4. More points
            give a higher-order base stencil; Richardson extrapolation raises the order anyway.

    Example:
        >>> central(1).weights
        (-0.5, 0.5)
    """
    minimal = 2 * ((order + 1) // 2) + 1
    points = minimal if points is None else points
    if points < minimal:
        raise UsageError(f"a central stencil for order {order} needs at least {minimal} points")
    half = points // 2
    offsets = tuple(range(-half, half + 1))
    stencil = _build(offsets, order)
    # Drop the zero-weight centre of odd-order stencils: it costs nothing but clarity.
    kept = [(o, w) for o, w in zip(stencil.offsets, stencil.weights, strict=True) if w != 0]
    return FiniteDifference(
        tuple(o for o, _ in kept), tuple(w for _, w in kept), order, stencil.powers
    )


def forward(order: int = 1, *, points: int | None = None) -> FiniteDifference:
    """A one-sided stencil on 0, h, 2h, …: for points at the edge of a function's domain.

    Args:
        order: the derivative to estimate, 1 to 4.
        points: number of samples, default order + 1 (error first order in h).
    """
    points = order + 1 if points is None else points
    if points < order + 1:
        raise UsageError(f"a one-sided stencil for order {order} needs at least {order + 1} points")
    return _build(tuple(range(points)), order)


def backward(order: int = 1, *, points: int | None = None) -> FiniteDifference:
    """The mirror image of `forward`: samples on 0, -h, -2h, …."""
    points = order + 1 if points is None else points
    if points < order + 1:
        raise UsageError(f"a one-sided stencil for order {order} needs at least {order + 1} points")
    return _build(tuple(-k for k in range(points)), order)
