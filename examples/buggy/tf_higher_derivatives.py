"""A Hessian from the naive second difference with eps = 1e-7: three digits lost to round-off.

The story: before reaching for nested tapes, the Hessian-vector product of sum(log(x + 2))
was written as a central second difference with a "small" step, eps = 1e-7. At x = 1 it gives
−0.1110223 where the exact value is −1/9 = −0.1111111: round-off (about ε/eps² ≈ 1e-2 of the
function's size) swamps the truncation error. Declared as `hvp=`, gradcheck compares it with
its own estimate, whose step and error bound come from the function, and flags it.
"""

import numpy as np
import tensorflow as tf

import gradcheck

EPS = 1e-7


def naive_hessian_vector_product(x, v):
    """(f'(x + eps·v) − f'(x − eps·v)) / 2eps with f' by a second difference of f: wrong."""
    x, v = np.asarray(x, dtype=float), np.asarray(v, dtype=float)
    f = lambda t: np.log(t + 2.0)  # noqa: E731
    second = (f(x + EPS) - 2 * f(x) + f(x - EPS)) / EPS**2
    return second * v


def gradient(x):
    """f'(x) = 1 / (x + 2), exact: only the second order is wrong here."""
    return 1.0 / (np.asarray(x, dtype=float) + 2.0)


@gradcheck.case(
    tf.constant([1.0], dtype=tf.float64), order=2, grad=gradient, hvp=naive_hessian_vector_product
)
def log_x_plus_2(x):
    """sum(log(x + 2)) with a Hessian from a naive finite difference."""
    return tf.reduce_sum(tf.math.log(x + 2.0))
