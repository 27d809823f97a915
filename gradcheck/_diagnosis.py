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
    outputs: Sequence[Leaf] = (),
    cotangent_scale: float = 1.0,
) -> str | None:
    """A short hint for a failed (m, n) Jacobian comparison, or None when no pattern fits.

    Args:
        analytic, numeric: (m, n) Jacobians; mismatch: (m, n) mask of entries that differ.
        inputs: the leaves of the n columns, to name a missing input.
        outputs: the leaves of the m rows; complex values are checked as ".real" and
            ".imag" leaves, which is how a forgotten conjugate shows.
        cotangent_scale: the constant the reverse-mode cotangents were scaled by; a backward
            that ignores its incoming gradient comes back off by exactly its inverse.
    """
    a, n = analytic[mismatch], numeric[mismatch]
    if a.size == 0:
        return None
    if analytic.shape[1] != sum(leaf.size for leaf in inputs):
        inputs = ()  # projections (fast mode), not Jacobian columns: no per-input patterns
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
    if cotangent_scale != 1.0 and _ignores_cotangent(analytic, numeric):
        return _IGNORES
    conjugate = _conjugate(analytic, numeric, mismatch, inputs, outputs)
    if conjugate:
        return conjugate
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = a / n
        ratio = float(np.median(ratios))
    if _near(ratio, -1.0):
        return "sign flip: the analytic derivative is the negative of the numeric one"
    if _near(ratio, 2.0):
        return "factor 2: the analytic derivative is twice the numeric one"
    if _near(ratio, 0.5):
        return "factor 1/2: the analytic derivative is half the numeric one"
    if cotangent_scale != 1.0 and _near(ratio, 1.0 / cotangent_scale):
        return _IGNORES
    transposed = _transposed(analytic, numeric, inputs)
    if transposed:
        return transposed
    finite = ratios[np.isfinite(ratios)]
    if (
        finite.size == ratios.size
        and not _near(ratio, 1.0)
        and np.ptp(finite) <= _CLOSE * abs(ratio)
    ):
        return (
            f"a constant factor: the analytic derivative is {ratio:.6g} times the numeric one "
            "on every failing entry (a wrong scale, a mean taken as a sum, a missing 1/n)"
        )
    return None


_IGNORES = (
    "the backward ignores its incoming gradient (grad_output / cotangent): "
    "it returns the same value whatever it is multiplied by"
)


def _ignores_cotangent(analytic: np.ndarray, numeric: np.ndarray) -> bool:
    """Every vector-Jacobian product came back the same, though the cotangents were distinct
    unit vectors and the true rows differ (an elementwise backward returning f'(x))."""
    if analytic.shape[0] < 2 or analytic.shape[1] < 2:
        return False
    scale = max(float(np.abs(analytic).max(initial=0.0)), 1e-300)
    same_rows = float(np.abs(analytic - analytic[:1]).max(initial=0.0)) <= 1e-12 * scale
    numeric_differs = float(np.abs(numeric - numeric[:1]).max(initial=0.0)) > 1e-6 * scale
    return same_rows and numeric_differs


def _conjugate(
    analytic: np.ndarray,
    numeric: np.ndarray,
    mismatch: np.ndarray,
    inputs: Sequence[Leaf],
    outputs: Sequence[Leaf],
) -> str | None:
    """A forgotten conjugate: exactly the entries that couple an imaginary part flip sign."""
    imag_in = _imaginary(inputs, analytic.shape[1])
    imag_out = _imaginary(outputs, analytic.shape[0])
    if not (imag_in.any() or imag_out.any()):
        return None
    coupled = imag_out[:, None] ^ imag_in[None, :]
    flipped = np.abs(analytic + numeric) <= _CLOSE * np.abs(numeric)
    if (mismatch <= (coupled & flipped)).all():
        return (
            "the conjugate is missing: the entries that couple real and imaginary parts have "
            "the wrong sign (a complex rule returned a·g where conj(a)·g is due, or the reverse)"
        )
    return None


def _imaginary(leaves: Sequence[Leaf], size: int) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    for leaf in leaves:
        if leaf.name.endswith(".imag"):
            mask[leaf.offset : leaf.offset + leaf.size] = True
    return mask


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
