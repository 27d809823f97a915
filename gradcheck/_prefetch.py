"""Values evaluated ahead, in a call that was made anyway, handed out when asked for.

A small check's cost is its number of calls into the framework: a vmapped call of 12 points
costs about what one of 2 points does. So the points the first ladders will ask for are
evaluated with the preflight's repeats and the noise table, and `Prefetched` answers the
ladder's first call from them. Each value is handed out once, for exactly the point it was
evaluated at (bit for bit), so the estimates are those of evaluating it at the time; a point
asked for again is evaluated again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._differentiable import Differentiable
from ._fd import Coordinates, NoiseLook, noise_look, opening_points

PREFETCH_COORDINATES = 16
"""Full checks of up to this many coordinates evaluate their first ladder rows ahead (six
points a coordinate); larger ones make that call anyway and would only add to it."""


@dataclass(frozen=True)
class Ahead:
    """What order 1 will ask for at points known before the check starts.

    Attributes:
        look: the noise measurement's look, drawn from the check's rng.
        ladder: (k, n) the points of the first ladders' first call, or (0, n).
    """

    look: NoiseLook
    ladder: np.ndarray

    @property
    def points(self) -> np.ndarray:
        """Every point, the noise table's first."""
        return np.vstack([self.look.points, self.ladder])

    def split(self, values: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """f at `points` as (the noise table, the ladder points' values); None if unknown."""
        if values is None:
            return None, None
        cut = len(self.look.points)
        return values[:cut], values[cut:]


def plan_ahead(fn: Differentiable, rng: np.random.Generator, *, ladders: bool) -> Ahead:
    """Draw order 1's noise look from rng, and where `ladders` (a full check with adaptive
    steps) and fn is small, find the first ladders' points."""
    look = noise_look(fn, rng)
    if not ladders or fn.n > PREFETCH_COORDINATES:
        return Ahead(look, np.empty((0, fn.n)))
    return Ahead(look, opening_points(fn, Coordinates(np.arange(fn.n), fn.n)))


class Prefetched(Differentiable):
    """`inner`, with f at `points` known: each known value answers one batched request."""

    def __init__(self, inner: Differentiable, points: np.ndarray, values: np.ndarray) -> None:
        super().__init__(inner.x0, inner.inputs, inner.outputs, eps=inner.eps, notes=inner.notes)
        self.framework = inner.framework  # type: ignore[misc]
        self._inner = inner
        self._known = {p.tobytes(): v for p, v in zip(points, values, strict=True)}

    def value(self, x: np.ndarray) -> np.ndarray:
        return self._inner.value(x)

    def values(self, xs: np.ndarray) -> np.ndarray:
        xs = np.asarray(xs, dtype=np.float64)
        if not self._known:
            return self._inner.values(xs)
        known = [self._known.pop(x.tobytes(), None) for x in xs]
        missing = [k for k, v in enumerate(known) if v is None]
        out = np.empty((len(xs), self.m))
        if missing:
            out[missing] = self._inner.values(xs[missing])
        for k, v in enumerate(known):
            if v is not None:
                out[k] = v
        return out
