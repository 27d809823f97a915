"""JAX inputs with entries that are not finite (issue #11.4): `jax.nn.softmax(x + mask)` with
the -inf mask a checked input, NaN padding. Those entries are held constant and named in a
note; the check, and its verdict, are about the finite ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy

import gradcheck as gc  # noqa: E402 - after the importorskip on purpose
from gradcheck.adapters.jax import JaxAdapter  # noqa: E402

MASK = np.array([[0.0, -np.inf, 0.0, 0.0], [-np.inf, 0.0, 0.0, -np.inf]])
HELD = (
    "has 3 entries that are not finite (-inf at (0, 1), -inf at (1, 0), -inf at (1, 3)): "
    "held constant, and the check runs on its 5 finite entries"
)


def array(values: Any, dtype: str = "float64") -> Any:
    with jax.enable_x64(True):
        return jnp.asarray(values, dtype=dtype)


def scores(dtype: str = "float64") -> Any:
    return array(np.random.default_rng(0).standard_normal((2, 4)), dtype)


def masked_softmax(x: Any, mask: Any) -> Any:
    return jax.nn.softmax(x + mask, axis=-1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_minus_inf_mask_is_held_constant_named_and_the_rest_checked(dtype: str) -> None:
    report = gc.check(masked_softmax, scores(dtype), array(MASK, dtype), order=2)
    assert report.verdict == "pass", report
    assert {"vjp", "jvp"} <= {c.kind for c in report.checks}, report
    assert f"input[1] {HELD}" in str(report)


def test_held_entries_of_a_pytree_leaf_are_named_where_they_sit() -> None:
    params = {"x": scores(), "mask": array(MASK)}
    f = JaxAdapter().bind(lambda p: masked_softmax(p["x"], p["mask"]), (params,), {}, None)
    assert [(leaf.name, leaf.size) for leaf in f.inputs] == [
        ("input[0]['mask']", 5),
        ("input[0]['x']", 8),
    ]
    assert f.inputs[0].locate(1) == "input[0]['mask'][0, 2]"
    assert f.gradient_map(np.ones(f.m)).outputs[0].locate(1) == "grad input[0]['mask'][0, 2]"
    ((mask_tangent, _),) = [tuple(t.values()) for t in f.native_tangents(np.ones(f.n))]
    np.testing.assert_array_equal(np.asarray(mask_tangent), np.isfinite(MASK).astype(float))
    report = gc.check(lambda p: masked_softmax(p["x"], p["mask"]), params)
    assert report.verdict == "pass", report
    assert f"input[0]['mask'] {HELD}" in str(report)


def _scaled_sin(scale: float) -> Any:
    """sin with a custom_vjp whose entry 1 is multiplied by `scale`."""

    @jax.custom_vjp
    def sin(x: Any) -> Any:
        return jnp.sin(x)

    def backward(x: Any, g: Any) -> tuple[Any]:
        return (g * jnp.cos(x) * jnp.ones_like(x).at[1].set(scale),)

    sin.defvjp(lambda x: (jnp.sin(x), x), backward)
    return sin


def test_a_wrong_rule_on_a_finite_entry_still_fails_there() -> None:
    x = array([np.inf, 0.3, -0.7, np.nan])

    def fn(scale: float) -> Any:
        return lambda x: jnp.where(jnp.isfinite(x), _scaled_sin(scale)(x), 0.0)

    report = gc.check(fn(1.1), x)
    assert report.verdict == "fail", report
    worst = str(report).split("note:")[0]
    assert "input[0][1]" in worst
    assert "input[0][0]" not in worst
    assert "input[0][3]" not in worst
    assert gc.check(fn(1.0), x).verdict == "pass"


def test_nan_entries_and_a_hand_written_gradient_read_on_the_finite_ones() -> None:
    x = array([0.5, np.nan, -1.0])

    def fn(x: Any) -> Any:
        return jnp.sum(jnp.where(jnp.isnan(x), 0.0, jnp.sin(x)))

    report = gc.check(fn, x, grad=jnp.cos)
    assert report.verdict == "pass", report
    assert "input[0] has 1 entry that is not finite (nan at (1,))" in str(report)
    assert gc.check(fn, x, grad=lambda x: 1.01 * jnp.cos(x)).verdict == "fail"


def test_an_input_with_no_finite_entry_is_held_whole_and_noted() -> None:
    mask = array(np.full((2, 4), -np.inf))
    report = gc.check(lambda x, m: jnp.sum(jnp.sin(x)) + jnp.sum(jnp.exp(m)), scores(), mask)
    assert report.verdict == "pass", report
    assert "input[1] has no finite entry" in str(report)
    shifted = lambda x, m: jax.nn.softmax(x + jnp.where(m < 0, 1.0, 0.0))  # noqa: E731
    assert gc.check(shifted, scores(), mask, wrt=0).verdict == "pass"
