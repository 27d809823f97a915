"""The TensorFlow/Keras 3 adapter: known answers on the flat interface, then verdicts via gc.check.

TF is imported once for the module (about 5 s and 600 MB resident on the 2-core CI box).
Most cases run with float32 and float64 user inputs: the check itself always runs on float64
copies, and the float32 run also exercises the dtype audit.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

import gradcheck as gc  # noqa: E402
from gradcheck._differentiable import Unsupported  # noqa: E402
from gradcheck.adapters import get_adapter  # noqa: E402
from gradcheck.adapters.tensorflow import TensorflowAdapter  # noqa: E402

DTYPES = ["float32", "float64"]
ZERO = tf.UnconnectedGradients.ZERO


def bind(fn: Any, *inputs: Any, wrt: Any = None, **kwargs: Any) -> Any:
    return TensorflowAdapter().bind(fn, inputs, kwargs, wrt)


def const(values: Any, dtype: str) -> Any:
    return tf.constant(np.asarray(values, dtype=np.float64), dtype=dtype)


def randn(*shape: int, dtype: str = "float64", seed: int = 0) -> Any:
    return const(np.random.default_rng(seed).standard_normal(shape), dtype)


def tanh_loss(x: Any, w: Any, b: Any) -> Any:
    return tf.reduce_sum(tf.tanh(tf.linalg.matvec(w, x) + b) ** 2)


def check_kinds(report: Any) -> dict[str, str]:
    return {c.kind: c.verdict for c in report.checks}


def scaled_sin(scale: float) -> Any:
    """sin with a tf.custom_gradient whose entry 1 is multiplied by `scale`."""

    @tf.custom_gradient
    def sin(x: Any) -> Any:
        def grad(dy: Any) -> Any:
            mask = tf.one_hot(1, tf.size(x), on_value=scale - 1.0, dtype=x.dtype) + 1.0
            return dy * tf.cos(x) * tf.reshape(mask, tf.shape(x))

        return tf.sin(x), grad

    return sin


@tf.custom_gradient
def ste_sign(x: Any) -> Any:
    """sign(x) forward, hard-tanh derivative backward (the straight-through estimator)."""
    return tf.sign(x), lambda dy: dy * tf.cast(tf.abs(x) <= 1, dy.dtype)


@tf.custom_gradient
def reverse_gradient(x: Any) -> Any:
    return tf.identity(x), lambda dy: -dy


def hard_tanh(x: Any) -> Any:
    return tf.clip_by_value(x, -1.0, 1.0)


# -- the flat interface ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_value_vjp_jvp_known_answers(dtype: str) -> None:
    x, w, b = randn(3, dtype=dtype), randn(4, 3, dtype=dtype, seed=1), randn(4, dtype=dtype, seed=2)
    f = bind(tanh_loss, x, w, b)
    assert (f.n, f.m, f.eps) == (19, 1, np.finfo(np.float64).eps)
    assert [leaf.name for leaf in f.inputs] == ["input[0]", "input[1]", "input[2]"]
    assert {leaf.dtype for leaf in f.inputs} == {dtype}
    x64, w64, b64 = (tf.cast(t, tf.float64) for t in (x, w, b))
    with tf.GradientTape() as tape:
        tape.watch([x64, w64, b64])
        y = tanh_loss(x64, w64, b64)
    expected = np.concatenate([g.numpy().ravel() for g in tape.gradient(y, [x64, w64, b64])])
    np.testing.assert_allclose(f.value(f.x0), [y.numpy()], rtol=1e-15)
    np.testing.assert_allclose(f.vjp(f.x0, np.array([2.0])), 2 * expected, rtol=1e-13)
    v = np.random.default_rng(3).standard_normal(f.n)
    np.testing.assert_allclose(f.jvp(f.x0, v), [expected @ v], rtol=1e-12)
    native = f.native_vjp(np.ones(1))
    if dtype == "float64":
        assert native is None
    else:
        assert native.dtype == np.float64
        np.testing.assert_allclose(native, expected, rtol=1e-5, atol=1e-6)
        assert not np.array_equal(native, expected)  # really computed in float32


def test_unconnected_input_reads_as_zero_and_vjps_match() -> None:
    f = bind(lambda x, y: 2.0 * x + tf.stop_gradient(y), randn(3), randn(3, seed=1))
    np.testing.assert_array_equal(f.vjp(f.x0, np.ones(3)), [2, 2, 2, 0, 0, 0])
    np.testing.assert_array_equal(f.jvp(f.x0, np.ones(6)), [2, 2, 2])
    us = np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_allclose(f.vjps(f.x0, us), np.stack([f.vjp(f.x0, u) for u in us]))


@pytest.mark.parametrize("compiled", [False, True])
def test_batches_vectorised_equal_loop(compiled: bool) -> None:
    fn = tf.function(tanh_loss) if compiled else tanh_loss
    f = bind(fn, randn(3), randn(4, 3, seed=1), randn(4, seed=2))
    rng = np.random.default_rng(0)
    xs = f.x0 + 1e-3 * rng.standard_normal((40, f.n))  # >= 32 rows: vectorised
    np.testing.assert_allclose(f.values(xs), np.stack([f.value(x) for x in xs]), rtol=1e-14)
    vs = rng.standard_normal((40, f.n))
    np.testing.assert_allclose(f.jvps(f.x0, vs), np.stack([f.jvp(f.x0, v) for v in vs]), rtol=1e-13)
    g = f.gradient_map(np.ones(1))  # Hessian-vector products, batched
    np.testing.assert_allclose(
        g.vjps(g.x0, vs), np.stack([g.vjp(g.x0, v) for v in vs]), rtol=1e-12, atol=1e-14
    )
    assert f._batching.works == {"values": True, "batched JVPs": True}
    assert not any("loop" in note for note in f.notes)


@contextlib.contextmanager
def tf_log() -> Iterator[list[logging.LogRecord]]:
    """The records TF's logger emits inside the block."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def test_repeated_checks_do_not_warn_about_retracing() -> None:
    """Each check traces its own batch function; TF must not call that excessive retracing."""
    with tf_log() as records:
        for seed in range(8):
            x = randn(40, seed=seed)  # 40 coordinates: batches of >= 32 rows are vectorised
            assert gc.check(lambda x: tf.reduce_sum(tf.tanh(x) ** 2), x).passed
    assert not [r for r in records if "retracing" in r.getMessage()]


def test_a_model_pfor_cannot_vectorise_is_looped_quietly() -> None:
    """pfor logs hundreds of ERROR lines when it gives up (a conv's batched filter); the
    check says so in one note instead."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Conv2D(2, 3, activation="tanh"),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    with tf_log() as records:
        report = gc.check(model, randn(1, 6, 6, 1))
    assert report.passed, str(report)
    assert not [r for r in records if r.levelno >= logging.ERROR]
    assert any("loop" in note and "Conv2D" in note for note in report.notes)


def test_values_fall_back_to_a_loop_with_a_note() -> None:
    def eager_only(x: Any) -> Any:  # .numpy() cannot be traced by tf.function
        return tf.constant(np.sin(x.numpy()))

    f = bind(eager_only, randn(3))
    xs = f.x0 + np.linspace(0, 1, 40)[:, None]
    np.testing.assert_allclose(f.values(xs), np.sin(xs))
    notes = [note for note in f.notes if "evaluated in a loop" in note]
    assert len(notes) == 1
    f.values(xs)
    assert len([note for note in f.notes if "evaluated in a loop" in note]) == 1


def test_gradient_map_nests_to_third_order() -> None:
    x = const([0.3, -0.7, 1.1], "float64")
    f = bind(lambda x: tf.reduce_sum(x**4), x)
    g = f.gradient_map(np.ones(1))  # 4 x^3
    np.testing.assert_allclose(g.value(g.x0), 4 * x.numpy() ** 3)
    e0 = np.array([1.0, 0.0, 0.0])
    np.testing.assert_allclose(g.vjp(g.x0, e0), [12 * 0.09, 0, 0])  # the Hessian row
    np.testing.assert_allclose(g.jvp(g.x0, e0), [12 * 0.09, 0, 0])
    h = g.gradient_map(e0)  # x -> H(x) e0 = (12 x0^2, 0, 0)
    np.testing.assert_allclose(h.vjp(h.x0, e0), [24 * 0.3, 0, 0])


def test_custom_gradient_forward_mode_is_unsupported_with_reason() -> None:
    f = bind(scaled_sin(2.0), randn(3))
    with pytest.raises(Unsupported, match="custom_gradient"):
        f.jvp(f.x0, np.ones(3))
    with pytest.raises(Unsupported, match="custom_gradient"):  # remembered, not re-probed
        f.jvp(f.x0, np.ones(3))
    good = bind(scaled_sin(1.0), randn(3))  # a rule equal to the forward derivative is fine
    np.testing.assert_allclose(good.jvp(good.x0, np.ones(3)), np.cos(good.x0))


def test_forward_mode_that_differs_in_graphs_is_unsupported() -> None:
    f = bind(ste_sign, tf.constant(np.linspace(-0.9, 0.9, 6)))
    np.testing.assert_array_equal(f.jvp(f.x0, np.ones(6)), np.ones(6))  # eager follows the rule
    with pytest.raises(Unsupported, match=r"tf\.function"):  # a graph does not
        f.jvps(f.x0, np.ones((40, 6)))
    with pytest.raises(Unsupported):
        f.jvp(f.x0, np.ones(6))


def test_inputs_and_global_state_are_left_alone() -> None:
    w = tf.Variable(np.ones((2, 3), np.float32))
    x = tf.constant([1.0, 2.0, 3.0])
    state = random.getstate()
    report = gc.check(lambda w, x: tf.reduce_sum(tf.sin(tf.linalg.matvec(w, x))), w, x)
    assert report.verdict == "pass"
    assert w.dtype == tf.float32
    assert x.dtype == tf.float32
    np.testing.assert_array_equal(w.numpy(), np.ones((2, 3)))
    assert random.getstate() == state
    assert keras.config.floatx() == "float32"


def test_integer_inputs_pass_through_and_complex_is_refused() -> None:
    f = bind(lambda x, k: tf.reduce_sum(x * tf.cast(k, x.dtype)), randn(3), tf.constant([1, 2, 3]))
    assert f.n == 3
    assert any("int32 tensor" in note and "not differentiated" in note for note in f.notes)
    with pytest.raises(gc.UsageError, match="complex"):
        bind(tf.math.real, tf.constant([1 + 2j]))
    with pytest.raises(gc.UsageError, match="input\\[0\\]"):
        bind(lambda k: k, tf.constant([1, 2]), wrt=0)


def test_captured_float32_falls_back_to_the_users_dtype() -> None:
    w = tf.constant(np.ones(3, np.float32))
    f = bind(lambda x: tf.reduce_sum(w * x**2), tf.constant([1.0, 2.0, 3.0]))
    assert f.eps == np.finfo(np.float32).eps
    assert any("user's dtype" in note for note in f.notes)
    np.testing.assert_allclose(f.vjp(f.x0, np.ones(1)), [2, 4, 6])


def test_detection() -> None:
    compiled = tf.function(lambda x: x * 2)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert isinstance(get_adapter([tf.constant(1.0), np.sin]), TensorflowAdapter)
    assert isinstance(get_adapter([np.ones(2), compiled]), TensorflowAdapter)
    assert isinstance(get_adapter([np.ones((1, 2)), model]), TensorflowAdapter)
    assert isinstance(get_adapter([tf.Variable(1.0), np.sin]), TensorflowAdapter)
    assert isinstance(get_adapter([np.ones(2)], "keras"), TensorflowAdapter)


@pytest.mark.parametrize("dtype", DTYPES)
def test_structured_outputs_and_user_vjp_through_the_hooks(dtype: str) -> None:
    def multi(x: Any) -> Any:
        return {"a": tf.sin(x), "b": (tf.reduce_sum(x**2), x * 3.0)}

    def user_vjp(scale: float) -> Any:
        return lambda x, u: tf.cos(x) * u["a"] + 2 * x * u["b"][0] + scale * u["b"][1]

    x = const([0.1, 0.5, -0.3], dtype)
    f = bind(multi, x)
    assert [leaf.name for leaf in f.outputs] == ["output['a']", "output['b'][0]", "output['b'][1]"]
    assert gc.check(multi, x).verdict == "pass"
    assert gc.check(multi, x, vjp=user_vjp(3.0)).verdict == "pass"
    assert gc.check(multi, x, vjp=user_vjp(2.0)).verdict == "fail"
    assert gc.check(tf.sin, x, jvp=lambda x, v: tf.cos(x) * v).verdict == "pass"


def test_keras_variable_and_python_float_inputs() -> None:
    v = keras.Variable(np.array([0.1, 0.2]))
    assert gc.check(lambda v: tf.reduce_sum(tf.sin(v)), v).verdict == "pass"
    assert gc.check(lambda s: tf.exp(s), 1.5, framework="tensorflow").verdict == "pass"


# -- verdicts through gc.check -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("compiled", [False, True])
def test_tanh_loss_passes_first_and_second_order(dtype: str, compiled: bool) -> None:
    fn = tf.function(tanh_loss) if compiled else tanh_loss
    x, w, b = randn(3, dtype=dtype), randn(4, 3, dtype=dtype, seed=1), randn(4, dtype=dtype, seed=2)
    report = gc.check(fn, x, w, b, order=2)
    assert report.verdict == "pass", str(report)
    assert {"vjp", "jvp", "hvp"} <= set(check_kinds(report))
    assert ("dtype" in check_kinds(report)) == (dtype == "float32")


@pytest.mark.parametrize("dtype", DTYPES)
def test_third_order_by_nested_tapes(dtype: str) -> None:
    x = const(np.linspace(-1, 1, 4), dtype)
    report = gc.check(lambda x: tf.reduce_sum(tf.sin(x) ** 3), x, order=3)
    assert report.verdict == "pass", str(report)
    assert any(c.kind == "hvp" and c.order == 3 for c in report.checks)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rule_right_at_first_order_but_not_second_fails(dtype: str) -> None:
    @tf.custom_gradient
    def sin(x: Any) -> Any:  # the rule's cos does not depend on x for a second tape
        return tf.sin(x), lambda dy: dy * tf.cos(tf.stop_gradient(x))

    x = const([0.3, -0.9, 1.4], dtype)
    assert gc.check(sin, x).verdict == "pass"
    report = gc.check(sin, x, order=2)
    assert report.verdict == "fail"
    assert any(c.kind == "hvp" and c.verdict == "fail" for c in report.checks)


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_inputs_with_framework_tensorflow(dtype: str) -> None:
    x = np.array([0.2, -0.4, 0.9], dtype=dtype)
    report = gc.check(lambda x: tf.reduce_sum(tf.exp(x) * tf.sin(x)), x, framework="tensorflow")
    assert report.verdict == "pass", str(report)


@pytest.mark.parametrize("dtype", DTYPES)
def test_injected_relative_error_is_caught(dtype: str) -> None:
    x = const([0.3, 0.8, -0.5], dtype)
    assert gc.check(scaled_sin(1.0), x).verdict == "pass"
    report = gc.check(scaled_sin(1.0 + 1e-6), x)
    assert report.verdict == "fail", str(report)
    assert "input[0][1]" in str(report)


@pytest.mark.parametrize("dtype", DTYPES)
def test_stop_gradient_cut_is_a_zero_gradient(dtype: str) -> None:
    report = gc.check(lambda x: tf.reduce_sum(tf.stop_gradient(x) * x), randn(3, dtype=dtype))
    assert report.verdict == "fail"  # analytic x, numeric 2x


@pytest.mark.parametrize("dtype", DTYPES)
def test_straight_through_estimator_positional_and_keyword(dtype: str) -> None:
    x = const([0.4, -0.6, 1.7, -2.5], dtype)
    report = gc.check(ste_sign, x, surrogate=hard_tanh)
    assert report.verdict == "pass", str(report)
    bypassed = gc.check(lambda x: ste_sign(x=x), x, surrogate=hard_tanh)  # TF pitfall
    assert bypassed.verdict == "fail"
    assert "not in effect" in str(bypassed).lower()


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_reversal(dtype: str) -> None:
    x = randn(5, dtype=dtype)
    assert gc.check(reverse_gradient, x, surrogate=lambda x: -x).verdict == "pass"
    assert gc.check(reverse_gradient, x).verdict == "fail"


@pytest.mark.parametrize("dtype", DTYPES)
def test_stop_gradient_trick(dtype: str) -> None:
    def rounded(x: Any) -> Any:  # forward: round(x); backward: the identity's
        return x + tf.stop_gradient(tf.round(x) - x)

    x = const([0.2, 1.3, -2.2], dtype)
    report = gc.check(rounded, x, surrogate=tf.identity)
    assert report.verdict == "pass", str(report)
    kinds = [c.kind for c in report.checks]
    assert kinds.count("surrogate") == 2  # reverse and forward: ForwardAccumulator agrees here


@tf.RegisterGradient("GradcheckTestSignIdentity")
def _sign_identity_grad(op: Any, dy: Any) -> Any:
    return dy


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_override_map_in_tf_function(dtype: str) -> None:
    @tf.function
    def sign_ste(x: Any) -> Any:
        graph = tf.compat.v1.get_default_graph()
        with graph.gradient_override_map({"Sign": "GradcheckTestSignIdentity"}):
            return tf.sign(x)

    x = const([0.4, -0.6, 1.7], dtype)
    report = gc.check(sign_ste, x, surrogate=tf.identity)
    assert report.verdict == "pass", str(report)


@pytest.mark.parametrize("dtype", DTYPES)
def test_custom_gradient_rule_wrong_fails_and_forward_is_skipped(dtype: str) -> None:
    report = gc.check(scaled_sin(3.0), const([0.3, 0.8, -0.5], dtype))
    assert report.verdict == "fail"
    assert check_kinds(report).get("jvp") != "fail"  # forward mode skipped, not failed
    assert any("custom_gradient" in note for note in report.notes)


@pytest.mark.parametrize(
    ("fn", "point"),
    [
        (lambda x: tf.reduce_sum(tf.where(x > 0, tf.pow(x, 1.5), x**2)), [-1.0, -0.5]),
        (lambda x: tf.reduce_sum(tf.where(x < -2, 1.0 / (x + 1), x)), [-1.0, 0.5]),
        (lambda x: tf.reduce_sum(tf.where(x > 1, tf.math.log(x), x)), [0.0, 0.5]),
        (lambda x: tf.norm(x) ** 2, [0.0, 0.0]),
    ],
    ids=["pow", "division", "log", "norm"],
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_traps_are_nonfinite(fn: Any, point: list[float], dtype: str) -> None:
    report = gc.check(fn, const(point, dtype))
    assert report.verdict == "nonfinite", str(report)


# -- Keras 3 ---------------------------------------------------------------------------------


def sequential(dtype: str) -> Any:
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, activation="tanh", dtype=dtype),
            keras.layers.Dense(2, dtype=dtype),
        ]
    )


def with_lambda(dtype: str) -> Any:
    keras.utils.set_random_seed(2)
    inputs = keras.Input((3,), dtype=dtype)
    hidden = keras.layers.Dense(4, dtype=dtype)(inputs)
    hidden = keras.layers.Lambda(lambda t: tf.sin(t) * tf.tanh(t), dtype=dtype)(hidden)
    return keras.Model(inputs, keras.layers.Dense(2, dtype=dtype)(hidden))


class Subclassed(keras.Model):
    def __init__(self, units: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(units, activation="tanh", dtype=self.dtype_policy)
        self.out = keras.layers.Dense(1, dtype=self.dtype_policy)

    def call(self, x: Any) -> Any:
        return self.out(self.hidden(x))


def subclassed(dtype: str) -> Any:
    keras.utils.set_random_seed(3)
    return Subclassed(dtype=dtype)


class CustomSin(keras.layers.Layer):
    """y = sin(x * scale_weight) with its gradient as a tf.custom_gradient rule."""

    def __init__(self, error: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def build(self, input_shape: Any) -> None:
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x: Any) -> Any:
        error = self.error

        @tf.custom_gradient
        def scaled_sin(x: Any, s: Any) -> Any:
            def grad(dy: Any) -> Any:
                c = dy * tf.cos(x * s)
                dx = c * s
                flat = tf.reshape(dx, [-1])
                dx = tf.reshape(
                    tf.tensor_scatter_nd_update(flat, [[1]], flat[1:2] * (1 + error)), tf.shape(dx)
                )
                return dx, tf.reduce_sum(c * x, axis=0)

            return tf.sin(x * s), grad

        return scaled_sin(x, tf.convert_to_tensor(self.scale))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "error": self.error}


def custom_layer(dtype: str, error: float = 0.0) -> Any:
    return CustomSin(error=error, dtype=dtype)


MODELS = {
    "sequential": sequential,
    "lambda": with_lambda,
    "subclassed": subclassed,
    "custom_gradient": custom_layer,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("wrt", ["inputs", "params", "all"])
def test_keras_models_pass_and_are_left_alone(kind: str, wrt: str, dtype: str) -> None:
    model = MODELS[kind](dtype)
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(dtype)
    model(x)
    before = [w.numpy().copy() for w in model.weights]
    policy, state = keras.config.dtype_policy().name, random.getstate()
    report = gc.check(model, x, wrt=wrt)
    assert report.verdict == "pass", str(report)
    assert keras.config.dtype_policy().name == policy == "float32"
    assert keras.config.floatx() == "float32"
    assert random.getstate() == state
    assert [str(w.dtype) for w in model.weights] == [dtype] * len(before)
    for w, old in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(w.numpy(), old)
    f = bind(model, x, wrt=wrt)
    names = [leaf.name for leaf in f.inputs]
    assert ("input[0]" in names) == (wrt != "params")
    assert any(name.startswith("params['") for name in names) == (wrt != "inputs")
    assert f.eps == np.finfo(np.float64).eps


@pytest.mark.parametrize("dtype", DTYPES)
def test_keras_custom_gradient_layer_injected_error_is_caught(dtype: str) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(dtype)
    layer = custom_layer(dtype, error=1e-6)
    layer(x)
    report = gc.check(layer, x, wrt="inputs")
    assert report.verdict == "fail", str(report)
    assert "input[0][0, 1]" in str(report)


def test_keras_settings_are_restored_when_user_code_raises() -> None:
    broken = {"now": False}

    def fragile(t: Any) -> Any:
        if broken["now"]:
            raise RuntimeError("broken on purpose")
        return tf.tanh(t)

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(fragile)(keras.layers.Dense(2)(inputs)))
    x = np.ones((1, 3), np.float32)
    model(x)
    broken["now"] = True
    state = random.getstate()
    with pytest.raises(RuntimeError, match="broken on purpose"):
        gc.check(model, x)
    assert keras.config.dtype_policy().name == "float32"
    assert keras.config.floatx() == "float32"
    assert random.getstate() == state


def test_keras_unbuilt_layer_and_nested_inputs() -> None:
    layer = keras.layers.Dense(2, activation="tanh")
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    state = random.getstate()
    report = gc.check(layer, x)
    assert report.verdict == "pass", str(report)
    assert any("was not built" in note for note in report.notes)
    assert not layer.built  # the user's layer is not built behind their back
    assert random.getstate() == state
    nested = gc.check(keras.layers.Concatenate(), [x, 2 * x])  # a list input is opened
    assert nested.passed, str(nested)


def test_keras_second_order_wrt_params() -> None:
    model = sequential("float32")
    x = np.random.default_rng(0).standard_normal((2, 3)).astype("float32")
    model(x)
    report = gc.check(model, x, wrt="params", order=2, mode="fast")
    assert report.verdict == "pass", str(report)
    assert "hvp" in check_kinds(report)


def test_keras_param_leaves_are_named_by_path() -> None:
    model = sequential("float32")
    model(np.zeros((1, 3), np.float32))
    f = bind(model, np.zeros((1, 3), np.float32), wrt="params")
    expected = [f"params[{w.path!r}]" for w in model.trainable_weights]
    assert [leaf.name for leaf in f.inputs] == expected
    with pytest.raises(gc.UsageError, match="wrt"):
        bind(model, np.zeros((1, 3), np.float32), wrt="weights")


def test_keras_lambda_that_cannot_run_in_float64_falls_back() -> None:
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(3)(inputs)
    out = keras.layers.Lambda(lambda t: t * tf.constant([1.0, 2.0, 3.0]))(hidden)
    model = keras.Model(inputs, out)
    x = np.ones((1, 3), np.float32)
    model(x)
    f = bind(model, x, wrt="inputs")
    assert f.eps == np.finfo(np.float32).eps
    assert any("could not be copied to float64" in note for note in f.notes)
    assert gc.check(model, x, wrt="inputs").verdict == "pass"


# -- the split-model scenario: a chain rule composed by hand -------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("transpose_missing", [False, True])
def test_split_models_composed_by_hand(dtype: str, transpose_missing: bool) -> None:
    keras.utils.set_random_seed(4)
    first = keras.Sequential(
        [keras.Input((3,), dtype=dtype), keras.layers.Dense(3, activation="tanh", dtype=dtype)]
    )
    second = keras.Sequential(
        [keras.Input((3,), dtype=dtype), keras.layers.Dense(3, activation="sigmoid", dtype=dtype)]
    )

    def loss(x: Any) -> Any:
        return tf.reduce_sum(second(first(x)) ** 2) / 2

    def composed(x: Any) -> Any:
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            h = first(x)
            o = second(h)
        d1, d2 = tape.batch_jacobian(h, x), tape.batch_jacobian(o, h)  # (B, 3, 3) each
        d2 = tf.transpose(d2, [0, 2, 1]) if transpose_missing else d2
        return tf.einsum("bo,boh,bhd->bd", o, d2, tf.cast(d1, o.dtype))

    x = np.random.default_rng(5).standard_normal((2, 3)).astype(dtype)
    report = gc.check(loss, tf.constant(x), grad=composed)
    assert report.verdict == ("fail" if transpose_missing else "pass"), str(report)
