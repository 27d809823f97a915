"""Compiled programs reused across checks of one function (issue #12): what is shared, what is
not, and that the cache never keeps a user's function alive.

See "Note: compiled programs are reused across checks" in gradcheck/adapters/jax/_flat.py.
"""

from __future__ import annotations

import gc as garbage
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy

import gradcheck as gc  # noqa: E402
from gradcheck.adapters.jax import JaxAdapter, _flat  # noqa: E402


def _f64(values: Any) -> Any:
    with jax.enable_x64(True):
        return jnp.asarray(np.asarray(values, dtype=np.float64))


def _bind(fn: Callable[..., Any], *inputs: Any, wrt: Any = None, **kwargs: Any) -> Any:
    return JaxAdapter().bind(fn, inputs, kwargs, wrt)


def _counting() -> tuple[Callable[[Any], Any], list[int]]:
    traces = [0]

    def f(x: Any) -> Any:
        traces[0] += 1  # runs once per trace, never per compiled call
        return jnp.sum(jnp.tanh(x) ** 2)

    return f, traces


def test_a_repeated_check_on_fresh_inputs_traces_once_more_at_most() -> None:
    f, traces = _counting()
    rng = np.random.default_rng(0)
    assert gc.check(f, _f64(rng.standard_normal(5)), mode="fast").passed
    first = traces[0]
    assert first > 1
    for _ in range(3):
        assert gc.check(f, _f64(rng.standard_normal(5)), mode="fast").passed
    # only the output-structure probe (eval_shape) traces again; no program is rebuilt
    assert traces[0] - first <= 3
    assert len(_flat._CACHE[f]) == 1


def test_new_shapes_and_wrt_get_their_own_programs_and_right_answers() -> None:
    f = lambda x, y: jnp.sum(jnp.sin(x) * y)  # noqa: E731
    x, y = _f64([0.3, -0.7]), _f64([1.5, 2.0])
    a = _bind(f, x, y, wrt=0)
    b = _bind(f, x, y, wrt=1)
    np.testing.assert_allclose(a.vjp(a.x0, np.ones(1)), np.cos([0.3, -0.7]) * [1.5, 2.0])
    np.testing.assert_allclose(b.vjp(b.x0, np.ones(1)), np.sin([0.3, -0.7]))
    c = _bind(f, _f64([0.1, 0.2, 0.3]), _f64([1.0, 1.0, 1.0]), wrt=0)
    np.testing.assert_allclose(c.vjp(c.x0, np.ones(1)), np.cos([0.1, 0.2, 0.3]))
    assert len(_flat._CACHE[f]) == 3  # wrt=0 and wrt=1, and the new shape of x


def test_unchecked_float_inputs_are_arguments_not_baked_constants() -> None:
    f = lambda x, w: jnp.sum(w * x)  # noqa: E731
    x = _f64([1.0, 2.0])
    first = _bind(f, x, _f64([1.0, 1.0]), wrt=0)
    second = _bind(f, x, _f64([3.0, -2.0]), wrt=0)
    assert first._programs is second._programs  # shared ...
    np.testing.assert_allclose(second.value(second.x0), [-1.0])  # ... with this check's w
    np.testing.assert_allclose(second.vjp(second.x0, np.ones(1)), [3.0, -2.0])


@pytest.mark.parametrize(
    ("one", "other"),
    [(2.0, 3.0), (np.array([0, 1]), np.array([1, 0]))],
    ids=["python float in a tree", "integer index array"],
)
def test_constants_are_part_of_the_key(one: Any, other: Any) -> None:
    def f(tree: Any) -> Any:
        picked = tree["x"][tree["c"]] if isinstance(tree["c"], np.ndarray) else tree["x"]
        scale = tree["c"] if isinstance(tree["c"], float) else 1.0
        return jnp.sum(picked * scale * jnp.arange(1.0, 3.0))

    x = _f64([1.0, 10.0])
    a = _bind(f, {"x": x, "c": one})
    b = _bind(f, {"x": x, "c": other})
    assert a._programs is not b._programs
    expected = {2.0: 42.0, 3.0: 63.0}
    for d, c in ((a, one), (b, other)):
        value = float(d.value(d.x0)[0])
        if isinstance(c, float):
            assert value == expected[c]
        else:
            assert value == float(np.sum(np.array([1.0, 10.0])[c] * [1.0, 2.0]))


def test_the_cache_does_not_keep_the_function_alive() -> None:
    def make() -> Callable[[Any], Any]:
        return lambda x: jnp.sum(jnp.exp(x))

    f = make()
    assert gc.check(f, _f64([0.1, 0.2]), mode="fast").passed
    ref = weakref.ref(f)
    assert f in _flat._CACHE
    del f
    garbage.collect()
    assert ref() is None  # nothing in the cache (programs, closures) held it


def test_a_wrong_rule_is_still_caught_after_a_right_one_of_the_same_shape() -> None:
    def rule(factor: float) -> Callable[[Any], Any]:
        @jax.custom_vjp
        def f(x: Any) -> Any:
            return jnp.sin(x)

        f.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (factor * g * jnp.cos(x),))
        return f  # type: ignore[no-any-return]

    x = _f64([0.3, 0.9])
    assert gc.check(rule(1.0), x).passed
    assert gc.check(rule(1.1), x).verdict == "fail"
