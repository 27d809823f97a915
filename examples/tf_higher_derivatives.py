"""Higher derivatives of log(x + 2) at x = 1, by chained GradientTapes and by `tf.hessians`.

The story: someone needs f⁽ⁿ⁾ for f(x) = log(x + 2) at x = 1 up to order 4 — exactly 1/3,
−1/9, 2/27 and −6/81 — and tries finite differences first: the naive second difference with
eps = 1e-7 gives −0.1110223 instead of −0.1111111 (round-off, ε/eps² ≈ 1e-2 of noise, eats
three digits). Nesting `tf.GradientTape`s gives all four exactly; `tf.hessians` gives the
second order in graph mode. Are they right? `gradcheck audit` checks, with its own error
bound instead of a fixed eps:

- `third_derivative`, three chained tapes, whose gradient (the fourth tape) is f⁽⁴⁾;
- `log_x_plus_2` itself with `order=4`: every derivative up to the fourth, through TF;
- `log_x_plus_2` with `order=2`, its gradient by one tape and the Hessian-vector product
  from `tf.hessians`.

Run this file (`python examples/tf_higher_derivatives.py`) to print the four derivatives
beside the exact values and the naive second difference. The naive difference used as a
Hessian is in `examples/buggy/tf_higher_derivatives.py`.
"""

import numpy as np
import tensorflow as tf

import gradcheck

X = tf.constant([1.0], dtype=tf.float64)
EXACT = (1 / 3, -1 / 9, 2 / 27, -6 / 81)


def chained_derivatives(x, order):
    """f', f'', … up to `order` at x, each by one more GradientTape around the last."""
    tapes = [tf.GradientTape(persistent=True) for _ in range(order)]
    for tape in tapes:
        tape.__enter__()
        tape.watch(x)
    value = tf.math.log(x + 2.0)
    found = []
    for tape in reversed(tapes):
        tape.__exit__(None, None, None)
        value = tape.gradient(value, x)
        found.append(value)
    return found


@gradcheck.case(X)
def third_derivative(x):
    """f'''(x) = 2 / (x + 2)³ by three chained tapes; its gradient is the fourth tape's."""
    return chained_derivatives(x, 3)[-1]


def gradient(x):
    """∇f(x) by one GradientTape: the first order, which a user-given Hessian comes with."""
    x = tf.convert_to_tensor(x, dtype=tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = tf.reduce_sum(tf.math.log(x + 2.0))
    return tape.gradient(value, x)


@tf.function(reduce_retracing=True)
def _hessian(x):
    return tf.hessians(tf.reduce_sum(tf.math.log(x + 2.0)), x)[0]


def hessian_vector_product(x, v):
    """H(x) v with H from tf.hessians (graph mode, hence the tf.function)."""
    x = tf.convert_to_tensor(x, dtype=tf.float64)
    h = tf.reshape(_hessian(x), (x.shape[0], x.shape[0]))
    return tf.linalg.matvec(h, tf.convert_to_tensor(v, dtype=tf.float64))


@gradcheck.case(X, order=4)
@gradcheck.case(
    tf.constant([1.0, 0.5], dtype=tf.float64), order=2, grad=gradient, hvp=hessian_vector_product
)
def log_x_plus_2(x):
    """sum(log(x + 2)): checked to the fourth order, and with tf.hessians at second order."""
    return tf.reduce_sum(tf.math.log(x + 2.0))


if __name__ == "__main__":
    for n, (d, exact) in enumerate(zip(chained_derivatives(X, 4), EXACT, strict=True), 1):
        print(f"f^({n})(1) = {float(d[0]): .10f}   exact {exact: .10f}")
    f, eps = (lambda t: np.log(t + 2.0)), 1e-7
    naive = (f(1 + eps) - 2 * f(1.0) + f(1 - eps)) / eps**2
    print(f"naive second difference, eps=1e-7: {naive:.7f}")
