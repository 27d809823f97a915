"""Points gradcheck chose are gradcheck's problem: an exception there reads as NaN.

A retry ladder with a larger start, a thorough estimate or a Taylor probe can step outside
the function's domain (a Cholesky factor of a matrix that is no longer positive definite,
a standard deviation below 0, a probability above 1), and user code may raise there rather
than return NaN. That is a fact about the step, not a finding and not a crash: the engine
already shrinks steps and goes one-sided around non-finite values, so the raising points are
turned into NaN rows and the report notes them. Only an exception at the user's own inputs
propagates unchanged (the preflight evaluates those unguarded).
"""

from __future__ import annotations

import numpy as np

from ._differentiable import Differentiable

_SHOWN = 3  # distinct exceptions named in the note at the most


class Guarded(Differentiable):
    """`inner` with exceptions at chosen points turned into NaN values; `raised` names them."""

    def __init__(self, inner: Differentiable) -> None:
        super().__init__(inner.x0, inner.inputs, inner.outputs, eps=inner.eps, notes=inner.notes)
        self.framework = inner.framework  # type: ignore[misc]
        self._inner = inner
        self.raised: dict[str, int] = {}  # "ValueError: not positive" -> points

    def value(self, x: np.ndarray) -> np.ndarray:
        try:
            return self._inner.value(x)
        except Exception as error:  # any failure of user code at a point we chose
            self._record(error)
            return np.full(self.m, np.nan)

    def values(self, xs: np.ndarray) -> np.ndarray:
        try:
            return self._inner.values(xs)
        except Exception:  # find the points that raise, one by one
            return np.stack([self.value(x) for x in xs]) if len(xs) else np.empty((0, self.m))

    def _record(self, error: Exception) -> None:
        lines = str(error).strip().splitlines()
        text = f"{type(error).__name__}: {lines[0] if lines else ''}"
        self.raised[text] = self.raised.get(text, 0) + 1

    def note(self) -> str | None:
        """What the report should say, if any chosen point raised."""
        if not self.raised:
            return None
        count = sum(self.raised.values())
        named = "; ".join(list(self.raised)[:_SHOWN])
        return (
            f"fn raised at {count} point(s) gradcheck chose near the input ({named}); they "
            "were treated like NaN values (smaller steps, one-sided differences)"
        )
