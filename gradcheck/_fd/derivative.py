"""derivative(): the finite-difference engine on its own, for any float64 NumPy function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._errors import UsageError
from .ladder import estimate
from .policy import Ladder
from .stencils import FiniteDifference, central


@dataclass(frozen=True, slots=True)
class Derivative:
    """A finite-difference derivative with its error estimate.

    Attributes:
        value: the estimate; shape (*f_shape,) along one direction, (*f_shape, *x_shape) for
            partial derivatives of every coordinate.
        error: its estimated absolute error, same shape; inf where nothing could be resolved.
        step: the (absolute) step behind each direction's estimate.
        kink: the jump in one-sided slopes where a kink was found (first order), else 0.
        evaluations: function evaluations spent, f(x) not included.
    """

    value: np.ndarray
    error: np.ndarray
    step: np.ndarray
    kink: np.ndarray
    evaluations: int


def derivative(
    f: Callable[[np.ndarray], object],
    x: object,
    *,
    order: int = 1,
    direction: object | None = None,
    method: FiniteDifference | None = None,
    rtol: float = 1e-13,
) -> Derivative:
    """The `order`-th derivative of f at x by an adaptive Richardson ladder, with error bars.

    Args:
        f: a function of one float64 array (or scalar) returning an array or scalar.
        x: the point.
        order: 1 to 4 (ignored when `method` is given: the stencil decides).
        direction: differentiate along this vector (same shape as x); default every
            coordinate, giving the gradient, Jacobian or elementwise higher derivatives.
        method: a stencil from `central`, `forward` or `backward`; default central.
        rtol: relative accuracy at which each ladder may stop early.

    Example:
        >>> d = derivative(lambda x: np.log(x + 2), 1.0, order=2)
        >>> bool(abs(d.value + 1 / 9) < 1e-9 and abs(d.value + 1 / 9) <= d.error)
        True
    """
    method = method or central(order)
    point = np.asarray(x, dtype=np.float64)
    if not np.isfinite(point).all() or point.size == 0:
        raise UsageError("x must be a non-empty array of finite numbers")
    flat = point.ravel()
    f0_raw = np.asarray(f(point.copy()))
    f_shape = f0_raw.shape
    eps = (
        max(float(np.finfo(f0_raw.dtype).eps), float(np.finfo(np.float64).eps))
        if np.issubdtype(f0_raw.dtype, np.floating)
        else float(np.finfo(np.float64).eps)
    )

    def batch(xs: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):  # probing outside the domain is expected, not news
            return np.stack(
                [np.asarray(f(row.reshape(point.shape)), dtype=np.float64).ravel() for row in xs]
            )

    if direction is None:
        directions = np.eye(flat.size)
    else:
        directions = np.asarray(direction, dtype=np.float64).reshape(1, -1)
        if directions.shape[1] != flat.size or not directions.any():
            raise UsageError(f"direction must be a non-zero array of x's shape {point.shape}")
    est = estimate(
        batch,
        flat,
        f0_raw.astype(np.float64).ravel(),
        directions,
        method,
        eps_f=eps,
        policy=Ladder(rtol=rtol),
    )

    def shaped(a: np.ndarray) -> np.ndarray:  # (d, m) -> (*f_shape, *x_shape) or (*f_shape,)
        if direction is not None:
            one: np.ndarray = a[0].reshape(f_shape)
            return one
        every: np.ndarray = np.moveaxis(a, 0, -1).reshape(f_shape + point.shape)
        return every

    return Derivative(
        shaped(est.value), shaped(est.error), est.step, shaped(est.kink), est.evaluations
    )
