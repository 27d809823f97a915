"""A test suite written for jax.test_util.check_grads, as JAX users write them.

tests/compat/test_compat.py runs it twice: as written, and with only the import line swapped
for `from gradcheck.compat import check_grads`. Both runs must pass.
"""

import jax
import jax.numpy as jnp
import pytest
from jax.test_util import check_grads


def points(*shape):
    return jax.random.normal(jax.random.PRNGKey(0), shape)


@jax.custom_vjp
def softplus(x):
    return jnp.logaddexp(x, 0.0)


def _fwd(x):
    return softplus(x), x


def _bwd(x, g):
    return (g * jax.nn.sigmoid(x),)


softplus.defvjp(_fwd, _bwd)


@jax.custom_vjp
def wrong_square(x):
    return x**2


def _wrong_fwd(x):
    return x**2, x


def _wrong_bwd(x, g):
    return (3.0 * x * g,)  # should be 2x


wrong_square.defvjp(_wrong_fwd, _wrong_bwd)


def test_first_order_both_modes():
    check_grads(jnp.tanh, (points(4),), order=1)


def test_second_order():
    check_grads(lambda x: jnp.sum(jnp.sin(x) * x), (points(3),), order=2)


def test_reverse_only():
    check_grads(lambda x, y: jnp.dot(x, y), (points(3), points(3)), order=1, modes=["rev"])


def test_custom_vjp_in_reverse_mode():
    check_grads(lambda x: jnp.sum(softplus(x) * 0.5), (points(3),), order=1, modes=("rev",))


def test_wrong_custom_vjp_raises():
    with pytest.raises(AssertionError):
        check_grads(wrong_square, (points(3),), order=1, modes=("rev",))


def test_explicit_tolerances():
    check_grads(jnp.exp, (points(2),), order=1, atol=1e-2, rtol=1e-2, eps=1e-4)
