"""Likely causes of a failed check, from the pattern of the mismatch.

Each rule looks at the mismatched entries only and names a bug people actually write: a
missing or detached gradient, a sign flip, a factor of two, a backward that ignores its
incoming gradient, a transposed Jacobian. None is a verdict; each is a hint next to one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._differentiable import Leaf

_CLOSE = 1e-3  # how near a ratio must be to a telltale value


def _near(ratio: float, target: float) -> bool:
    return bool(np.isfinite(ratio)) and abs(ratio - target) <= _CLOSE * abs(target)


def likely_cause(
    analytic: np.ndarray,
    numeric: np.ndarray,
    mismatch: np.ndarray,
    inputs: Sequence[Leaf],
    *,
    cotangent_scale: float = 1.0,
) -> str | None:
    """A short hint for a failed (m, n) Jacobian comparison, or None when no pattern fits.

    Args:
        analytic, numeric: (m, n) Jacobians; mismatch: (m, n) mask of entries that differ.
        inputs: the leaves of the n columns, to name a missing input.
        cotangent_scale: the constant the reverse-mode cotangents were scaled by; a backward
            that ignores its incoming gradient comes back off by exactly its inverse.
    """
    a, n = analytic[mismatch], numeric[mismatch]
    if a.size == 0:
        return None
    if not a.any():
        for leaf in inputs:
            block = slice(leaf.offset, leaf.offset + leaf.size)
            if not analytic[:, block].any() and numeric[:, block].any():
                return (
                    f"the analytic gradient of {leaf.name} is entirely zero: the input is "
                    "detached (detach/stop_gradient) or its gradient is never returned"
                )
        return (
            "the analytic derivative is zero where the numbers are not: a detach() or "
            "stop_gradient leak, or a missing term"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.median(a / n))
    if _near(ratio, -1.0):
        return "sign flip: the analytic derivative is the negative of the numeric one"
    if _near(ratio, 2.0):
        return "factor 2: the analytic derivative is twice the numeric one"
    if _near(ratio, 0.5):
        return "factor 1/2: the analytic derivative is half the numeric one"
    if cotangent_scale != 1.0 and _near(ratio, 1.0 / cotangent_scale):
        return (
            "the backward ignores its incoming gradient (grad_output / cotangent): "
            "it returns the same value whatever it is multiplied by"
        )
    transposed = _transposed(analytic, numeric, inputs)
    if transposed:
        return transposed
    return None


def _transposed(analytic: np.ndarray, numeric: np.ndarray, inputs: Sequence[Leaf]) -> str | None:
    def same(x: np.ndarray, y: np.ndarray) -> bool:
        scale = max(float(np.abs(y).max(initial=0.0)), 1e-300)
        return bool(np.abs(x - y).max(initial=0.0) <= 1e-6 * scale)

    m, n = analytic.shape
    if m == n > 1 and same(analytic, numeric.T) and not same(analytic, numeric):
        return "transposed: the analytic Jacobian is the transpose of the numeric one"
    for leaf in inputs:
        if len(leaf.shape) == 2 and leaf.shape[0] == leaf.shape[1] > 1:
            block = slice(leaf.offset, leaf.offset + leaf.size)
            a = analytic[:, block].reshape(m, *leaf.shape)
            b = numeric[:, block].reshape(m, *leaf.shape)
            if not same(a, b) and same(a, b.transpose(0, 2, 1)):
                return (
                    f"transposed: the analytic gradient of {leaf.name} is the transpose "
                    "of the numeric one"
                )
    return None
