"""Hand-written NumPy gradients, declared as gradcheck cases.

The story: a scientist derives gradients and Hessians by hand and wants them checked against
numbers, near the hard spots too (log-sum-exp next to exp overflow). `gradcheck audit
examples/numpy_losses.py` runs every `@gradcheck.case`; all pass. The same kind of gradient
with a forgotten factor is in `examples/buggy/numpy_losses.py`.
"""

import numpy as np

import gradcheck

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 3))
X = RNG.standard_normal(3)


@gradcheck.case(X, grad=lambda x: W.T @ (2 * np.tanh(W @ x) * (1 - np.tanh(W @ x) ** 2)))
def tanh_layer_loss(x):
    """sum(tanh(Wx)^2), the benchmark function, with its hand-derived gradient."""
    return np.sum(np.tanh(W @ x) ** 2)


def _log_sum_exp_grad(x):
    e = np.exp(x - x.max())
    return e / e.sum()


@gradcheck.case(np.array([700.0, 701.0, 699.5]), grad=_log_sum_exp_grad)
@gradcheck.case(np.array([-3.0, 0.1, 2.0]), grad=_log_sum_exp_grad)
def log_sum_exp(x):
    """Stable log-sum-exp, checked near exp overflow as well."""
    m = x.max()
    return m + np.log(np.sum(np.exp(x - m)))


@gradcheck.case(
    np.array([0.3, 1.5]),
    grad=lambda x: np.log(x + 2) + x / (x + 2),
    hvp=lambda x, v: (1 / (x + 2) + 2 / (x + 2) ** 2) * v,
    order=2,
)
def x_log_x_plus_2(x):
    """sum(x log(x+2)) with its Hessian (order 2)."""
    return np.sum(x * np.log(x + 2))
