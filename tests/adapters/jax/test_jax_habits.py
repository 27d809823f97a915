"""What users of jax.test_util.check_grads bring with them: the inputs tuple."""

from __future__ import annotations

import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import gradcheck as gc  # noqa: E402 - after the importorskip on purpose


def test_check_grads_style_inputs_tuple_says_what_was_meant() -> None:
    """check_grads(f, (x, y), order=1) habit: a tuple is a valid pytree, but a function of two
    arguments cannot have meant one; the user's own TypeError would not say why."""
    x, y = jnp.linspace(0.1, 1.0, 3), jnp.linspace(1.0, 2.0, 3)
    with pytest.raises(gc.UsageError, match=r"did you mean gc.check\(f, \*inputs\)"):
        gc.check(lambda a, b: jnp.sum(jnp.sin(a) * b), (x, y))


def test_a_tuple_for_a_function_of_one_pytree_is_a_pytree() -> None:
    x, y = jnp.linspace(0.1, 1.0, 3), jnp.linspace(1.0, 2.0, 3)
    report = gc.check(lambda p: jnp.sum(jnp.sin(p[0]) * p[1]), (x, y))
    assert report.verdict == "pass", report
