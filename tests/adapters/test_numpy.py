"""The NumPy adapter on its own: what it binds, how it maps the flat vector, what it refuses.

NumPy has no autodiff: the adapter only evaluates the function on float64 copies and converts
between the flat vector and the user's arrays for hand-written derivatives (the checks of
those derivatives are tested through `gc.check` in `tests/test_check.py`; here, those of
inputs with entries that are not finite, and of complex functions, issue #11).
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
        (lambda x: np.argmax(x), (np.ones(2),), "floating point"),
        (lambda x: {1, 2}, (np.ones(2),), "outputs must be arrays"),
    ],
    ids=[
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


# -- entries that are not finite are held constant (#11.4) ------------------------------------

MASK = np.array([[0.0, -np.inf, 0.0, 0.0], [-np.inf, 0.0, 0.0, -np.inf]])


def masked_softmax(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    e = np.exp(x + mask - np.max(x + mask, axis=-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def masked_softmax_vjp(x: np.ndarray, mask: np.ndarray, u: np.ndarray) -> tuple[Any, Any]:
    """The same gradient for x and for the mask: both enter through x + mask."""
    s = masked_softmax(x, mask)
    g = s * (u - (u * s).sum(-1, keepdims=True))
    return g, g


def test_a_minus_inf_mask_is_held_constant_named_and_the_rest_checked() -> None:
    x = np.random.default_rng(0).standard_normal((2, 4))
    report = gc.check(masked_softmax, x, MASK, vjp=masked_softmax_vjp)
    assert report.verdict == "pass", report
    text = str(report)
    assert (
        "input[1] has 3 entries that are not finite (-inf at (0, 1), -inf at (1, 0), "
        "-inf at (1, 3)): held constant, and the check runs on its 5 finite entries" in text
    )
    f = bind(masked_softmax, x, MASK)
    assert f.n == 8 + 5
    assert f.inputs[1].locate(8 + 1) == "input[1][0, 2]"
    tangents = f.native_tangents(np.ones(f.n))
    np.testing.assert_array_equal(tangents[1], np.isfinite(MASK).astype(float))


def test_a_wrong_gradient_of_the_finite_entries_still_fails_there() -> None:
    x = np.random.default_rng(0).standard_normal((2, 4))

    def wrong(x: Any, mask: Any, u: Any) -> tuple[Any, Any]:
        g, h = masked_softmax_vjp(x, mask, u)
        return g, 1.1 * h

    report = gc.check(masked_softmax, x, MASK, vjp=wrong)
    assert report.verdict == "fail", report
    worst = str(report).split("note:")[0]
    assert "input[1][0, 0]" in worst or "input[1][0, 2]" in worst
    assert "input[1][0, 1]" not in worst


def test_nan_entries_are_held_and_a_hand_written_gradient_is_read_on_the_finite_ones() -> None:
    x = np.array([0.5, np.nan, -1.0, np.nan])
    fn = lambda x: np.nansum(np.sin(x))  # noqa: E731
    report = gc.check(fn, x, grad=lambda x: np.cos(x))
    assert report.verdict == "pass", report
    assert "input[0] has 2 entries that are not finite (nan at (1,), nan at (3,))" in str(report)
    assert gc.check(fn, x, grad=lambda x: 1.01 * np.cos(x)).verdict == "fail"


def test_a_hand_written_jacobian_beside_held_entries_is_read_on_the_finite_columns() -> None:
    """jacobian= returns the whole array's columns; the held (-inf) one is left out."""
    x = np.array([0.3, -np.inf, 1.2])
    fn = lambda x: np.exp(x)  # noqa: E731
    assert gc.check(fn, x, jacobian=lambda x: np.diag(np.exp(x))).verdict == "pass"
    wrong = lambda x: np.diag(np.exp(x) * [1.0, 1.0, 1.01])  # noqa: E731
    assert gc.check(fn, x, jacobian=wrong).verdict == "fail"


def test_an_input_with_no_finite_entry_is_held_whole_and_noted() -> None:
    """As torch's checker passes _safe_softmax with every position masked (OpInfo)."""
    report = gc.check(masked_softmax, np.ones((2, 4)), np.full((2, 4), -np.inf), vjp=_first)
    assert "input[1] has no finite entry" in str(report)
    assert report.verdict == "nonfinite", report  # every row is masked: the value is nan
    alone = gc.check(lambda m: np.sum(np.exp(m)), np.full(3, -np.inf), grad=np.exp)
    assert alone.verdict == "pass", alone  # nothing to differentiate, as an empty input


def _first(x: Any, mask: Any, u: Any) -> Any:
    return masked_softmax_vjp(x, mask, u)[0]


# -- complex functions with hand-written derivatives (#11.1) ---------------------------------

A = 0.7 - 1.3j
Z = np.array([0.3 + 0.4j, -1.1 + 0.2j, 0.5 - 0.9j])
CONJUGATE_MISSING = "the conjugate is missing"


def test_complex_inputs_and_outputs_are_real_and_imaginary_leaves() -> None:
    f = bind(lambda z, t: np.exp(z) * t, Z, np.array([0.5, 1.0, 2.0]))
    assert [leaf.name for leaf in f.inputs] == ["input[0].real", "input[0].imag", "input[1]"]
    assert [leaf.name for leaf in f.outputs] == ["output.real", "output.imag"]
    np.testing.assert_array_equal(f.x0[:6], np.concatenate([Z.real, Z.imag]))
    expected = np.exp(Z) * [0.5, 1.0, 2.0]
    np.testing.assert_allclose(f.value(f.x0), np.concatenate([expected.real, expected.imag]))
    z, _ = f.native_inputs(f.x0)
    assert z.dtype == np.complex128
    np.testing.assert_array_equal(z, Z)
    assert any("PyTorch's convention" in note for note in f.notes)


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_a_real_loss_of_complex_parameters_in_pytorchs_convention(mode: str) -> None:
    """|Wx - y|² for complex W: the gradient is ∂L/∂re + i·∂L/∂im = 2·r·conj(x)ᵀ."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))
    x, y = rng.standard_normal(3) + 0.5j, np.array([1.0 + 1j, -0.5])

    def loss(w: Any) -> Any:
        return np.sum(np.abs(w @ x - y) ** 2)

    def grad(w: Any) -> Any:
        return 2 * np.outer(w @ x - y, np.conj(x))

    report = gc.check(loss, w, grad=grad, mode=mode)
    assert report.verdict == "pass", report
    wrong = gc.check(loss, w, grad=lambda w: np.conj(grad(w)), mode=mode)  # JAX's convention
    assert wrong.verdict == "fail", wrong
    if mode == "full":
        assert CONJUGATE_MISSING in str(wrong), wrong


def _scale_vjp(conjugate: bool) -> Any:
    """z -> A·z: grad_output·conj(A) in PyTorch's convention; without the conjugate wrong."""
    return lambda z, g: g * (np.conj(A) if conjugate else A)


def test_a_holomorphic_vjp_with_its_conjugate_passes() -> None:
    report = gc.check(lambda z: A * z, Z, vjp=_scale_vjp(conjugate=True))
    assert report.verdict == "pass", report


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_a_vjp_that_forgets_the_conjugate_fails_with_that_cause(mode: str) -> None:
    report = gc.check(lambda z: A * z, Z, vjp=_scale_vjp(conjugate=False), mode=mode)
    assert report.verdict == "fail", report
    if mode == "full":
        assert CONJUGATE_MISSING in str(report), report


def test_a_holomorphic_derivative_is_given_as_a_complex_number() -> None:
    """f'(z) as jacobian= (its Jacobian), grad= of a complex scalar, and jvp= f'(z)·dz."""
    fn = lambda z: np.sin(z) * z  # noqa: E731
    derivative = lambda z: np.cos(z) * z + np.sin(z)  # noqa: E731
    by_jacobian = gc.check(fn, Z, jacobian=lambda z: np.diag(derivative(z)))
    assert by_jacobian.verdict == "pass", by_jacobian
    by_jvp = gc.check(fn, Z, jvp=lambda z, dz: derivative(z) * dz)
    assert by_jvp.verdict == "pass", by_jvp
    by_grad = gc.check(lambda z: fn(z).sum(), Z, grad=derivative)
    assert by_grad.verdict == "pass", by_grad
    conjugated = gc.check(fn, Z, jacobian=lambda z: np.diag(np.conj(derivative(z))))
    assert conjugated.verdict == "fail", conjugated
    assert CONJUGATE_MISSING in str(conjugated), conjugated


def test_a_complex_output_of_a_real_input() -> None:
    t = np.array([0.3, -0.8])
    fn = lambda t: np.exp(1j * t) * t  # noqa: E731
    derivative = lambda t: np.exp(1j * t) * (1 + 1j * t)  # noqa: E731
    assert gc.check(fn, t, jacobian=lambda t: np.diag(derivative(t))).passed
    assert gc.check(fn, t, jvp=lambda t, dt: derivative(t) * dt).passed
    # vjp: the cotangent comes as gr + i·gi; the real input's gradient is Re(conj(f')·g)
    vjp = lambda t, g: np.real(np.conj(derivative(t)) * g)  # noqa: E731
    assert gc.check(fn, t, vjp=vjp).passed
    wrong = lambda t, g: np.real(derivative(t) * g)  # noqa: E731
    assert gc.check(fn, t, vjp=wrong).verdict == "fail"


def test_complex_misuse_is_a_usage_error() -> None:
    with pytest.raises(gc.UsageError, match="not holomorphic"):
        gc.check(lambda z: np.sum(np.abs(z) ** 2), Z, jacobian=lambda z: 2 * np.conj(z))
    with pytest.raises(gc.UsageError, match="complex values for the real input"):
        gc.check(lambda z, x: np.sum(np.abs(z * x) ** 2), Z, np.ones(3), grad=lambda z, x: (z, z))


def test_a_complex_mask_entry_that_is_not_finite_is_held_in_both_parts() -> None:
    z = Z.copy()
    z[1] = complex(np.inf, 0.0)
    fn = lambda z: np.sum(np.abs(np.where(np.isfinite(z), z, 0)) ** 2)  # noqa: E731
    report = gc.check(fn, z, grad=lambda z: np.where(np.isfinite(z), 2 * z, 0))
    assert report.verdict == "pass", report
    assert "input[0] has 1 entry that is not finite" in str(report)
    f = bind(fn, z)
    assert [leaf.size for leaf in f.inputs] == [2, 2]
