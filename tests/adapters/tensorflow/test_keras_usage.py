"""Keras 3 as users call it (issues #10.1, #10.12, #11.4): multi-input functional models in
both calling forms, closures over models called with NumPy inputs, randomness (Dropout with
training=True) and float32 layers given float64 inputs with respect to their weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

import gradcheck as gc  # noqa: E402
from gradcheck.adapters.tensorflow import TensorflowAdapter  # noqa: E402


def _two_input_model(head: Any = None) -> Any:
    keras.utils.set_random_seed(0)
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    hidden = keras.layers.Dense(4, activation="tanh")(a)
    joined = keras.layers.Concatenate()([hidden, b])
    out = keras.layers.Dense(1, kernel_initializer=head)(joined)
    return keras.Model([a, b], out)


def _inputs(dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((2, 3)).astype(dtype), rng.standard_normal((2, 2)).astype(dtype)


@pytest.mark.parametrize("form", ["positional", "list"])
@pytest.mark.parametrize("wrt", ["inputs", "params", "all"])
def test_multi_input_functional_model_in_both_calling_forms(form: str, wrt: str) -> None:
    model = _two_input_model()
    a, b = _inputs()
    args = (a, b) if form == "positional" else ([a, b],)
    before = [w.numpy().copy() for w in model.weights]
    report = gc.check(model, *args, wrt=wrt)
    assert report.passed, report
    bound = TensorflowAdapter().bind(model, args, {}, wrt)
    names = [leaf.name for leaf in bound.inputs]
    expected = ["input[0]", "input[1]"] if form == "positional" else ["input[0][0]", "input[0][1]"]
    assert (names[:2] == expected) == (wrt != "params"), names
    assert any(name.startswith("params[") for name in names) == (wrt != "inputs")
    for w, old in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(w.numpy(), old)


def test_dict_input_and_one_checked_input_of_two() -> None:
    model = _two_input_model()
    a, b = _inputs()
    report = gc.check(model, {"a": a, "b": b}, wrt=[1])
    assert report.passed, report
    bound = TensorflowAdapter().bind(model, ({"a": a, "b": b},), {}, [1])
    assert [leaf.name for leaf in bound.inputs] == ["input[0]['b']"]


def test_wrong_gradient_in_a_multi_input_model_fails() -> None:
    @tf.custom_gradient
    def doubled_grad(t: Any) -> Any:
        return tf.sin(t), lambda dy: 2.0 * dy * tf.cos(t)

    keras.utils.set_random_seed(0)
    a, b = keras.Input((3,)), keras.Input((2,))
    joined = keras.layers.Concatenate()([keras.layers.Lambda(doubled_grad)(a), b])
    model = keras.Model([a, b], keras.layers.Dense(1)(joined))
    report = gc.check(model, *_inputs(), wrt="inputs")
    assert report.verdict == "fail", report


def test_closure_over_a_model_with_numpy_inputs_is_checked_by_tensorflow() -> None:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="tanh")])
    x = np.random.default_rng(0).standard_normal((2, 3))
    report = gc.check(lambda t: model(t), x)
    assert report.framework == "tensorflow"
    assert any("framework='tensorflow'" in note for note in report.notes), report
    assert report.verdict == "pass", report
    with pytest.raises(gc.UsageError, match="framework='tensorflow'"):
        gc.check(lambda t: model(t), x, framework="numpy", grad=lambda t: t)


def _dropout_model(training: bool) -> Any:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3)(inputs)
    return keras.Model(inputs, keras.layers.Dropout(0.5)(hidden, training=training))


def test_dropout_in_training_is_a_fixed_mask_said_plainly() -> None:
    model = _dropout_model(training=True)
    x = tf.constant(np.random.default_rng(0).standard_normal((2, 4)), tf.float32)
    report = gc.check(model, x)
    assert report.passed, report
    assert any("same draw" in note and "fixed dropout mask" in note for note in report.notes)
    assert "dtype" not in {c.kind for c in report.checks}, report  # no precision blamed
    # the model's own calls still draw new masks: its seed state was not frozen for good
    assert not np.array_equal(model(x).numpy(), model(x).numpy())


def test_dropout_at_inference_draws_nothing_and_is_not_noted() -> None:
    report = gc.check(_dropout_model(training=False), np.ones((2, 4), np.float32))
    assert report.passed, report
    assert not any("random" in note for note in report.notes)


@pytest.mark.parametrize("wrt", ["params", "all"])
def test_float32_conv_layer_with_float64_input_keeps_its_dtype_audit(wrt: str) -> None:
    keras.utils.set_random_seed(0)
    conv = keras.layers.Conv2D(2, 3)
    conv.build((1, 5, 5, 1))
    x = tf.constant(np.random.default_rng(0).random((1, 5, 5, 1)))
    report = gc.check(conv, x, wrt=wrt)
    assert report.passed, report
    assert "dtype" in {c.kind for c in report.checks}, report
    assert not any("dtype audit skipped" in note for note in report.notes), report
