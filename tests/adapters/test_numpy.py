"""The NumPy adapter on its own: what it binds, how it maps the flat vector, what it refuses.

NumPy has no autodiff: the adapter only evaluates the function on float64 copies and converts
between the flat vector and the user's arrays for hand-written derivatives (the checks of
those derivatives are tested through `gc.check` in `tests/test_check.py`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gradcheck as gc
from gradcheck._differentiable import Unsupported
from gradcheck.adapters import get_adapter
from gradcheck.adapters.numpy import NumpyAdapter, NumpyFlat


def bind(fn: Any, *inputs: Any, wrt: Any = None, **kwargs: Any) -> Any:
    return NumpyAdapter().bind(fn, inputs, kwargs, wrt)


def test_binding_flattens_float_inputs_in_order() -> None:
    x, w = np.arange(3.0), np.arange(6.0).reshape(2, 3).astype(np.float32)
    f = bind(lambda x, w: w @ x, x, w)
    assert isinstance(f, NumpyFlat)
    assert f.framework == "numpy"
    assert [(leaf.name, leaf.shape, leaf.dtype) for leaf in f.inputs] == [
        ("input[0]", (3,), "float64"),
        ("input[1]", (2, 3), "float32"),
    ]
    assert (f.n, f.m) == (9, 2)
    np.testing.assert_array_equal(f.x0, np.concatenate([x, w.ravel()]))
    assert f.x0.dtype == np.float64
    assert f.positions == (0, 1)
    np.testing.assert_allclose(f.value(f.x0), w.astype(np.float64) @ x)


def test_value_runs_on_float64_copies_and_never_touches_the_inputs() -> None:
    seen: list[Any] = []

    def fn(x: Any) -> Any:
        seen.append(x.dtype)
        x *= 2  # writes into its argument
        return x.sum()

    x = np.ones(3, dtype=np.float32)
    f = bind(fn, x)
    point = f.x0 + 1.0
    before = point.copy()
    assert f.value(point)[0] == 12.0
    np.testing.assert_array_equal(point, before)
    np.testing.assert_array_equal(x, np.ones(3))
    assert set(seen) == {np.dtype(np.float64)}
    assert f.inputs[0].dtype == "float32"  # the user's dtype, for the report


def test_wrt_selects_inputs_and_the_rest_pass_through_with_a_note() -> None:
    x, y = np.array([1.0, 2.0]), np.array([3.0])
    f = bind(lambda x, y: x * y, x, y, wrt=1)
    assert f.positions == (1,)
    assert [leaf.name for leaf in f.inputs] == ["input[1]"]
    np.testing.assert_array_equal(f.value(np.array([5.0])), [5.0, 10.0])
    assert f.notes == (
        "input[0] (float64 array of shape (2,)) is passed through unchanged, not differentiated",
    )
    assert bind(lambda x, y: x * y, x, y, wrt=[-1, 1]).positions == (1,)  # deduplicated
    args = f.native_inputs(np.array([7.0]))
    assert args[0] is not x
    np.testing.assert_array_equal(args[0], x)
    np.testing.assert_array_equal(args[1], [7.0])


def test_int_and_bool_inputs_pass_through_and_cannot_be_asked_for() -> None:
    idx, mask = np.array([2, 0]), np.array([True, False, True])

    def fn(x: Any, i: Any, m: Any, k: int) -> Any:
        return x[i] * k + x[m].sum()

    f = bind(fn, np.arange(3.0), idx, mask, 3)
    assert f.positions == (0,)
    assert len(f.notes) == 2  # the two arrays; a Python int is not worth a note
    np.testing.assert_allclose(f.value(f.x0), [6.0 + 2.0, 0.0 + 2.0])
    with pytest.raises(gc.UsageError, match=r"input\[1\], which is int64 array"):
        bind(fn, np.arange(3.0), idx, mask, 3, wrt=1)
    with pytest.raises(gc.UsageError, match=r"input\[3\], which is int"):
        bind(fn, np.arange(3.0), idx, mask, 3, wrt=3)
    with pytest.raises(gc.UsageError, match="no floating-point input"):
        bind(lambda i: i * 1.0, idx)


def test_a_python_float_input_comes_back_as_a_python_float() -> None:
    kinds: list[type] = []

    def fn(x: Any, s: Any) -> Any:
        kinds.append(type(s))
        return x * s

    f = bind(fn, np.ones(2), 0.5)
    assert f.positions == (0, 1)
    np.testing.assert_array_equal(f.value(np.array([1.0, 2.0, 3.0])), [3.0, 6.0])
    assert set(kinds) == {float}
    assert get_adapter([0.5]).framework == "numpy"


def test_structured_outputs_are_named_and_rebuilt_by_native_outputs() -> None:
    def fn(x: Any) -> Any:
        return {"a": x * 2, "b": (x.sum(), [x[:1] ** 2])}

    f = bind(fn, np.array([1.0, 2.0], dtype=np.float32))
    assert [leaf.name for leaf in f.outputs] == [
        "output['a']",
        "output['b'][0]",
        "output['b'][1][0]",
    ]
    assert f.m == 4
    assert f.eps == np.finfo(np.float64).eps  # computed on float64 copies
    cotangent = f.native_outputs(np.arange(4.0))
    assert set(cotangent) == {"a", "b"}
    np.testing.assert_array_equal(cotangent["a"], [0.0, 1.0])
    assert cotangent["b"][0] == 2.0
    assert isinstance(cotangent["b"][1], list)
    np.testing.assert_array_equal(cotangent["b"][1][0], [3.0])


def test_output_round_off_follows_the_output_dtype() -> None:
    x = np.array([1.0, 2.0])
    assert bind(lambda x: x * 2, x).eps == np.finfo(np.float64).eps
    assert bind(lambda x: (x * 2).astype(np.float32), x).eps == np.finfo(np.float32).eps


def test_conversion_hooks_map_the_flat_vector_to_arrays() -> None:
    x, w = np.zeros((2, 2)), np.zeros(3)
    f = bind(lambda x, w: x.sum() + w.sum(), x, w)
    tangents = f.native_tangents(np.arange(7.0))
    assert [t.shape for t in tangents] == [(2, 2), (3,)]
    np.testing.assert_array_equal(tangents[1], [4.0, 5.0, 6.0])
    assert f.flat_inputs(tangents) is None  # NumPy gradients are matched per input
    with f.scope():
        pass
    assert f.native_vjp(np.ones(1)) is None


def test_no_autodiff_derivatives_are_unsupported() -> None:
    f = bind(np.sin, np.array([0.5]))
    for call in (
        lambda: f.vjp(f.x0, np.ones(1)),
        lambda: f.jvp(f.x0, np.ones(1)),
        lambda: f.gradient_map(np.ones(1)),
    ):
        with pytest.raises(Unsupported, match="numpy"):
            call()


def test_values_loop_over_rows_without_numpy_warnings() -> None:
    f = bind(np.log, np.array([1.0, 2.0]))
    xs = np.array([[1.0, 2.0], [-1.0, 0.0]])  # outside the domain on purpose
    out = f.values(xs)
    np.testing.assert_array_equal(out[0], np.log([1.0, 2.0]))
    assert np.isnan(out[1, 0])
    assert out[1, 1] == -np.inf


@pytest.mark.parametrize(
    ("fn", "inputs", "match"),
    [
        (np.sin, (np.array([1 + 2j]),), "complex inputs"),
        (np.sin, (np.array([1.0, np.nan]),), "finite"),
        (lambda x: x * 1j, (np.ones(2),), "complex"),
        (lambda x: np.argmax(x), (np.ones(2),), "floating point"),
        (lambda x: {1, 2}, (np.ones(2),), "outputs must be arrays"),
    ],
    ids=[
        "complex-input",
        "nan",
        "complex-output",
        "int-output",
        "set-output",
    ],
)
def test_bad_inputs_and_outputs_are_usage_errors(fn: Any, inputs: Any, match: str) -> None:
    with pytest.raises(gc.UsageError, match=match):
        bind(fn, *inputs)


@pytest.mark.parametrize(
    ("wrt", "match"),
    [(5, "out of range"), ("params", "modules and layers"), ([], "empty"), ([0.5], "indices")],
)
def test_bad_wrt_is_a_usage_error(wrt: Any, match: str) -> None:
    with pytest.raises(gc.UsageError, match=match):
        bind(np.sin, np.ones(2), wrt=wrt)


def test_an_output_structure_that_changes_is_a_usage_error() -> None:
    f = bind(lambda x: (x,) if x[0] > 0 else (x, x), np.ones(2))
    with pytest.raises(gc.UsageError, match="different output structure"):
        f.value(-f.x0)


def test_user_errors_propagate_unchanged() -> None:
    def broken(x: Any) -> Any:
        raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        bind(broken, np.ones(2))
