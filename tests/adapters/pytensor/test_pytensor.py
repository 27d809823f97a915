"""The PyTensor adapter: graphs and compiled functions, scoped floatX, overrides, and verdicts.

Every test runs as a float32 user would (`floatX="float32"`) and checks that the setting is
still there afterwards. Most run in PyTensor's Python mode (`FAST_COMPILE`: no C compiler, no
numba, quick to compile); the guided-backprop examples also run in the default (numba) mode.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytensor = pytest.importorskip("pytensor")
pt: Any = pytest.importorskip("pytensor.tensor")  # Any: much of it is untyped

from pytensor.compile.builders import OpFromGraph  # noqa: E402
from pytensor.configdefaults import config  # noqa: E402

import gradcheck as gc  # noqa: E402
from gradcheck._differentiable import Differentiable, Unsupported  # noqa: E402
from gradcheck._errors import UsageError  # noqa: E402
from gradcheck.adapters import get_adapter  # noqa: E402
from gradcheck.adapters.pytensor import PytensorAdapter  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
NOT_IN_EFFECT = "override is NOT in effect"


@pytest.fixture(autouse=True)
def _float32_user() -> Iterator[None]:
    """A float32 user in Python mode; no check may leave floatX (or the mode) changed."""
    with config.change_flags(floatX="float32", mode="FAST_COMPILE"):
        yield
        assert config.floatX == "float32"
        assert config.mode == "FAST_COMPILE"


def _bind(fn: Callable[..., Any], *inputs: Any, wrt: Any = None, **kwargs: Any) -> Any:
    return PytensorAdapter().bind(fn, inputs, kwargs, wrt)


def _check(fn: Callable[..., Any], *inputs: Any, **options: Any) -> gc.Report:
    return gc.check(fn, *inputs, framework="pytensor", **options)


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"example_{path.parent.name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _guided(factor: float = 1.0) -> Callable[[list[Any], list[Any], list[Any]], list[Any]]:
    """Guided-backprop pullback of a ReLU, times `factor` (1 + 1e-6: a subtly wrong rule)."""

    def pullback(inputs: list[Any], outputs: list[Any], cotangents: list[Any]) -> list[Any]:
        (x,), (g,) = inputs, cotangents
        return [g * pt.gt(x, 0).astype(g.dtype) * pt.gt(g, 0).astype(g.dtype) * factor]

    return pullback


RNG = np.random.default_rng(6)
W1 = RNG.standard_normal((6, 4))
W2 = RNG.standard_normal((3, 6))
IMAGE = RNG.standard_normal(4)  # |W1 @ IMAGE| > 0.9: no unit near its kink


def _scores(relu: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda image: pt.matmul(W2, relu(pt.matmul(W1, image)))


def _positive_paths(image: Any) -> Any:
    return pt.matmul(np.maximum(W2, 0), pt.maximum(pt.matmul(W1, image), 0))


def _relu_op(**overrides: Any) -> Callable[[Any], Any]:
    h = pt.tensor("h", dtype="float64", shape=(6,))
    op = OpFromGraph([h], [pt.maximum(h, 0)], name="GuidedReLU", **overrides)
    return lambda x: op(x)


# ---------------------------------------------------------------- the Differentiable itself


def test_value_vjp_jvp_and_batches_match_known_answers() -> None:
    x = np.array([0.3, -1.2, 2.0], dtype=np.float32)
    d = _bind(lambda x: pt.sin(x) * x, x)
    x0 = x.astype(np.float64)
    jac = np.diag(np.cos(x0) * x0 + np.sin(x0))
    u, v = np.array([1.0, -2.0, 0.5]), np.array([0.1, 0.2, -0.3])
    np.testing.assert_allclose(d.value(d.x0), np.sin(x0) * x0, rtol=1e-15)
    np.testing.assert_allclose(d.vjp(d.x0, u), jac.T @ u, rtol=1e-14)
    np.testing.assert_allclose(d.jvp(d.x0, v), jac @ v, rtol=1e-14)
    np.testing.assert_allclose(d.vjps(d.x0, np.stack([u, 2 * u])), [jac.T @ u, 2 * jac.T @ u])
    np.testing.assert_allclose(d.jvps(d.x0, np.stack([v, -v])), [jac @ v, -(jac @ v)])
    xs = d.x0 + np.arange(15.0).reshape(5, 3) / 10
    np.testing.assert_allclose(d.values(xs), np.sin(xs) * xs, rtol=1e-15)
    assert d.eps == np.finfo(np.float64).eps
    assert [leaf.dtype for leaf in d.inputs] == ["float32"]
    assert not any("loop" in note for note in d.notes)  # batches were vectorised


def test_float32_inputs_and_floatx_symbols_are_float64_during_the_check() -> None:
    x = np.array([3.0], dtype=np.float32)
    made: list[str] = []

    def fn(x: Any) -> Any:
        made.append(pt.vector().dtype)  # floatX inside the check
        return (x * (1 + 1e-10) - x) * 1e10  # float32 gives 0, float64 gives 3

    d = _bind(fn, x)
    np.testing.assert_allclose(d.value(d.x0), [3.0], rtol=1e-5)
    assert made == ["float64"]
    assert config.floatX == "float32"


def test_floatx_is_restored_after_an_exception_in_the_users_code() -> None:
    def broken(x: Any) -> Any:
        raise KeyError("the user's own error")

    with pytest.raises(KeyError, match="the user's own error"):
        _check(broken, np.ones(2))
    assert config.floatX == "float32"


def test_outputs_in_containers_are_named_and_shaped() -> None:
    d = _bind(lambda x: {"a": pt.exp(x), "b": (x.sum(), 2.0)}, np.ones((2, 2)))
    assert [leaf.name for leaf in d.outputs] == ["output['a']", "output['b'][0]", "output['b'][1]"]
    assert [leaf.shape for leaf in d.outputs] == [(2, 2), (), ()]
    parts = d.native_outputs(np.arange(6.0))
    assert parts["a"].shape == (2, 2)
    assert parts["b"][1] == 5.0


def test_output_shapes_known_only_at_run_time_are_measured_and_held() -> None:
    d = _bind(lambda x: x[pt.gt(x, 0).nonzero()] ** 2, np.array([1.0, -2.0, 3.0]))
    assert [leaf.shape for leaf in d.outputs] == [(2,)]
    np.testing.assert_allclose(d.value(d.x0), [1.0, 9.0])
    with pytest.raises(UsageError, match="returned 3 output entries at another point"):
        d.value(np.array([1.0, 2.0, 3.0]))


def test_an_integer_side_input_is_a_constant_of_the_graph() -> None:
    report = _check(
        lambda x, idx: pt.sum(x[idx] ** 3), np.array([0.5, -1.0, 2.0]), np.array([2, 0])
    )
    assert report.passed, report
    assert any("input[1] (int64 array of shape (2,)) is a constant" in n for n in report.notes)
    assert [c.kind for c in report.checks] == ["vjp", "jvp", "adjoint"]


def test_a_compiled_function_is_detected_and_checked_in_float64() -> None:
    a, k = pt.fvector("a"), pt.lscalar("k")
    compiled = pytensor.function([a, k], [pt.tanh(a) * k, a**2])
    inputs = (np.array([0.2, -0.7], dtype=np.float32), np.int64(3))
    assert isinstance(get_adapter([*inputs, compiled]), PytensorAdapter)
    d = _bind(compiled, *inputs)
    assert [leaf.name for leaf in d.outputs] == ["output[0]", "output[1]"]
    x0 = inputs[0].astype(np.float64)
    np.testing.assert_allclose(d.value(d.x0), [*(np.tanh(x0) * 3), *(x0**2)], rtol=1e-15)
    report = gc.check(compiled, *inputs)
    assert report.passed, report
    assert any("dtype" == c.kind for c in report.checks)  # float32: the audit ran


def test_an_op_of_a_compiled_graph_that_fixes_float32_is_noted() -> None:
    a = pt.fvector("a")
    d = _bind(pytensor.function([a], pt.sum(a**2)), np.array([0.2, -0.7], dtype=np.float32))
    assert d.eps == np.finfo(np.float32).eps  # Sum was built for float32 and stays so
    assert any(n.startswith("output is float32 even on float64 inputs") for n in d.notes)


def test_vector_output_and_second_order() -> None:
    report = _check(lambda x: pt.exp(x) * x[::-1], np.array([0.3, -1.2, 2.0]), order=2)
    assert report.passed, report
    assert {c.kind for c in report.checks} == {"vjp", "jvp", "adjoint", "hvp"}
    assert {c.order for c in report.checks} == {1, 2}


def test_a_scan_is_differentiated_after_its_batched_copy_was_compiled() -> None:
    """Compiling rewrites a Scan's inner graph in place (a Composite, which has no gradient):
    only copies are compiled, so reverse mode still works after the values."""

    def running(x: Any) -> Any:
        steps = pytensor.scan(
            lambda xt, acc: acc * pt.tanh(xt) + xt,
            sequences=[x],
            outputs_info=[pt.ones(())],
            return_updates=False,
        )
        return steps[-1]

    d = _bind(running, np.array([0.3, -0.5, 0.8]))
    d.values(np.stack([d.x0] * 3))
    assert np.isfinite(d.vjp(d.x0, np.ones(1))).all()


def test_native_vjp_runs_the_users_float32_graph() -> None:
    x = np.array([1e-3, 2.0, 3.0], dtype=np.float32)
    d = _bind(lambda x: pt.sum(pt.exp(x) * 1e4), x)
    u = np.array([1.0])
    native, truth = d.native_vjp(u), d.vjp(d.x0, u)
    assert native is not None
    assert 0 < np.abs(native - truth).max() / np.abs(truth).max() < 1e-6  # float32 round-off
    assert _bind(lambda x: pt.sum(x), np.ones(2)).native_vjp(u) is None  # float64: no audit


def test_forward_mode_without_an_op_pushforward_is_unsupported_with_the_reason() -> None:
    d = _bind(lambda x: pt.sort(x) * x, np.array([0.3, -1.2, 2.0]))
    with pytest.raises(Unsupported, match="pushforward not implemented for SortOp"):
        d.jvp(d.x0, np.ones(3))
    report = _check(lambda x: pt.sort(x) * x, np.array([0.3, -1.2, 2.0]))
    assert report.passed, report
    assert any(n.startswith("forward mode not checked") for n in report.notes)


def test_single_calls_and_small_batches_agree_to_the_last_bit() -> None:
    """BLAS rounds a row differently in batches of different sizes; padding evens them."""
    w = np.random.default_rng(1).standard_normal((3, 5))
    d = _bind(lambda x: pt.tanh(pt.dot(w, pt.sin(x))), np.random.default_rng(2).standard_normal(5))
    single = d.value(d.x0)
    for batch in (d.values(np.stack([d.x0] * 2)), d.values(np.stack([d.x0] * 7))):
        np.testing.assert_array_equal(batch, np.stack([single] * len(batch)))


def test_batches_fall_back_to_a_loop_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("no batched form")

    monkeypatch.setattr("pytensor.graph.replace.vectorize_graph", refuse)
    d = _bind(lambda x: pt.sin(x), np.array([0.1, 0.2]))
    xs = np.array([[0.1, 0.2], [0.3, 0.4]])
    np.testing.assert_allclose(d.values(xs), np.sin(xs), rtol=1e-15)
    assert any("values are evaluated in a loop" in note for note in d.notes)


def test_gradient_map_nests_to_the_third_derivative() -> None:
    d: Differentiable = _bind(lambda x: pt.sum(pt.log(x)), np.array([0.5, 2.0]))
    for _ in range(2):
        d = d.gradient_map(np.ones(d.m))
    np.testing.assert_allclose(d.vjp(d.x0, np.ones(2)), 2 / np.array([0.5, 2.0]) ** 3)


def test_it_works_without_a_c_compiler() -> None:
    """A fresh interpreter with `cxx=""`: PyTensor's Python linker, named in the notes."""
    code = (
        "import numpy as np, pytensor.tensor as pt, gradcheck as gc\n"
        "r = gc.check(lambda x: pt.sum(pt.tanh(x) ** 2), np.array([0.3, -1.0]),"
        " framework='pytensor', order=2)\n"
        "print(r.verdict, *r.notes, sep='\\n')\n"
    )
    env = {**os.environ, "PYTENSOR_FLAGS": "cxx=,mode=FAST_COMPILE"}
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "pass"
    assert any("Python VM (each Op's NumPy perform; no C compiler needed)" in n for n in lines)


def test_the_mode_and_linker_used_are_noted() -> None:
    report = _check(lambda x: pt.sum(x**2), np.array([1.0, 2.0]))
    assert any(
        n == "compiled by pytensor.function in mode 'FAST_COMPILE', Python VM (each Op's NumPy "
        "perform; no C compiler needed) linker"
        for n in report.notes
    )


@pytest.mark.parametrize(
    ("fn", "inputs", "match"),
    [
        (lambda x: x, (pt.dvector("x"),), "symbolic PyTensor variable"),
        (lambda x: x, (np.array([1j]),), "complex inputs are not supported"),
        (lambda x: x, (np.array([1.0, np.nan]),), "finite points"),
        (lambda x: pt.argmax(x), (np.array([1.0, 2.0]),), "must be floating point"),
        (lambda x: object(), (np.array([1.0]),), "outputs must be arrays"),
        (np.sum, (np.array([1, 2]),), "no floating-point input"),
    ],
)
def test_bad_inputs_are_usage_errors(fn: Any, inputs: tuple[Any, ...], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        _check(fn, *inputs)


def test_bad_calls_of_a_compiled_function_are_usage_errors() -> None:
    a = pt.dvector("a")
    compiled = pytensor.function([a], pt.sum(a))
    with pytest.raises(UsageError, match="takes 1 inputs, but 2"):
        gc.check(compiled, np.ones(2), np.ones(2))
    with pytest.raises(UsageError, match="is Vector"):
        gc.check(compiled, np.ones((2, 2)))
    with pytest.raises(UsageError, match="keyword arguments"):
        gc.check(compiled, np.ones(2), kwargs={"a": 1})


# ---------------------------------------------------------------- verdicts end to end


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_correct_graph_passes(dtype: str) -> None:
    w = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]], dtype=dtype)
    report = _check(
        lambda x, w: pt.sum(pt.tanh(pt.matmul(w, x)) ** 2), np.array([0.3, -1.2, 2.0], dtype), w
    )
    assert report.passed, report


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_1e_6_relative_error_in_an_opfromgraph_pullback_is_caught(dtype: str) -> None:
    def pullback(inputs: list[Any], outputs: list[Any], cotangents: list[Any]) -> list[Any]:
        (x,), (g,) = inputs, cotangents
        return [g * pt.cos(x) * (1 + 1e-6)]

    h = pt.tensor("h", dtype="float64", shape=(3,))
    op = OpFromGraph([h], [pt.sin(h)], pullback=pullback)
    report = _check(lambda x: op(x) * 2.0, np.array([0.3, -1.2, 2.0], dtype))
    assert report.verdict == "fail", report
    assert (report.checks[0].kind, report.checks[0].verdict) == ("vjp", "fail")


@pytest.mark.parametrize("factor", [1.0, 1 + 1e-6])
def test_a_hand_written_grad_is_checked(factor: float) -> None:
    w = np.array([1.0, -2.0, 0.5])
    report = _check(
        lambda x: pt.sum(pt.tanh(x) * w),
        np.array([0.3, -1.2, 2.0]),
        grad=lambda x: (1 - np.tanh(x) ** 2) * w * factor,
    )
    assert report.verdict == ("pass" if factor == 1.0 else "fail"), report


@pytest.mark.parametrize("factor", [1.0, 1 + 1e-6])
def test_a_pushforward_override_is_what_forward_mode_checks(factor: float) -> None:
    h = pt.tensor("h", dtype="float64", shape=(3,))
    op = OpFromGraph(
        [h],
        [pt.sin(h)],
        pullback=lambda inputs, outputs, cotangents: [cotangents[0] * pt.cos(inputs[0])],
        pushforward=lambda inputs, tangents: [tangents[0] * pt.cos(inputs[0]) * factor],
    )
    report = _check(lambda x: op(x) * 2.0, np.array([0.3, -1.2, 2.0]))
    verdicts = {c.kind: c.verdict for c in report.checks}
    expected = "pass" if factor == 1.0 else "fail"
    assert verdicts == {"vjp": "pass", "jvp": expected, "adjoint": expected}, report


def test_hand_written_vjp_and_jvp_get_and_return_numpy_arrays() -> None:
    w = np.array([[1.0, -2.0], [0.5, 3.0], [2.0, 1.0]])
    report = _check(
        lambda x: {"y": pt.tanh(pt.dot(w, x))},
        np.array([0.3, -0.2]),
        vjp=lambda x, u: w.T @ ((1 - np.tanh(w @ x) ** 2) * u["y"]),
        jvp=lambda x, v: (1 - np.tanh(w @ x) ** 2) * (w @ v),
    )
    assert report.passed, report
    assert {c.kind for c in report.checks} == {"vjp", "jvp", "adjoint"}


def test_guided_backprop_given_as_pullback_is_in_effect() -> None:
    report = _check(_scores(_relu_op(pullback=_guided())), IMAGE, surrogate=_positive_paths)
    assert report.passed, report
    assert any(
        "bypass the pullback override of OpFromGraph 'GuidedReLU'" in n for n in report.notes
    )


def test_guided_backprop_by_the_deprecated_lop_overrides_is_in_effect() -> None:
    with pytest.warns(FutureWarning, match="lop_overrides is deprecated"):
        relu = _relu_op(lop_overrides=_guided())
    assert _check(_scores(relu), IMAGE, surrogate=_positive_paths).passed


def test_a_1e_6_error_in_an_override_against_its_surrogate_is_caught() -> None:
    report = _check(_scores(_relu_op(pullback=_guided(1 + 1e-6))), IMAGE, surrogate=_positive_paths)
    assert report.verdict == "fail", report
    assert NOT_IN_EFFECT not in str(report)


def _assigned_grad() -> Callable[[Any], Any]:
    h = pt.tensor("h", dtype="float64", shape=(6,))
    op = OpFromGraph([h], [pt.maximum(h, 0)])
    op.grad = lambda inputs, grads: _guided()(inputs, [], grads)  # type: ignore[assignment, arg-type, method-assign]
    return lambda x: op(x)


@pytest.mark.parametrize(
    "relu",
    [
        pytest.param(lambda: lambda x: pt.maximum(x, 0), id="plain relu in the graph"),
        pytest.param(_assigned_grad, id="op.grad assigned (the Lasagne recipe)"),
    ],
)
def test_an_override_that_is_not_in_effect_is_named(relu: Callable[[], Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these bypasses warns: that is the trap
        built = relu()
    report = _check(_scores(built), IMAGE, surrogate=_positive_paths)
    assert report.verdict == "fail", report
    assert NOT_IN_EFFECT in str(report)


def test_grad_overrides_is_swallowed_silently() -> None:
    """Theano's keyword is taken for a compilation option of the inner graph, unused when that
    graph is inlined (or run by numba; the Python linker raises a TypeError compiling it)."""
    relu = _relu_op(grad_overrides=_guided(), inline=True)
    report = _check(_scores(relu), IMAGE, surrogate=_positive_paths)
    assert report.verdict == "fail", report
    assert NOT_IN_EFFECT in str(report)


@pytest.mark.parametrize(
    ("mode", "path", "verdict"),
    [
        ("FAST_COMPILE", EXAMPLES / "pytensor_guided_backprop.py", "pass"),
        ("FAST_COMPILE", EXAMPLES / "buggy" / "pytensor_guided_backprop.py", "fail"),
        # PyTensor's default (numba) mode too; one case only: a cold numba cache costs 15-30 s
        ("Mode", EXAMPLES / "pytensor_guided_backprop.py", "pass"),
    ],
    ids=["example, Python mode", "buggy example, Python mode", "example, default mode"],
)
def test_the_guided_backprop_examples(mode: str, path: Path, verdict: str) -> None:
    """The example passes and its buggy twin is caught as an override not in effect."""
    with config.change_flags(mode=mode):
        fn = _load(path).class_scores
        (case,) = fn.__gradcheck_cases__
        report = gc.check(fn, *case.inputs, **case.options)
    assert report.verdict == verdict, report
    assert (NOT_IN_EFFECT in str(report)) == (verdict == "fail")
