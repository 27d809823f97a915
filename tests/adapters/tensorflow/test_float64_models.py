"""Closures over float32 Keras models checked in float64 (issue #10.5): `float64_models`.

The seed scenario: a Keras CNN cut into model_0 and model_1, the gradient of
model_1(model_0(x)) and a hand-composed VJP built with GradientTape.jacobian. Inside the block
the closure computes in float64 through clones; the user's models are left exactly as they were.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

import gradcheck as gc  # noqa: E402
from gradcheck.adapters.tensorflow import float64_models  # noqa: E402


def _split_cnn() -> tuple[Any, Any]:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    hidden = keras.layers.MaxPooling2D()(hidden)
    model_0 = keras.Model(inputs, hidden)
    middle = keras.Input(hidden.shape[1:])
    out = keras.layers.Dense(3)(keras.layers.Flatten()(middle))
    return model_0, keras.Model(middle, out)


def _x() -> Any:
    return tf.constant(np.random.default_rng(0).standard_normal((1, 8, 8, 1)), tf.float32)


def _snapshot(model: Any) -> tuple[Any, ...]:
    return (
        type(model),
        model.dtype_policy.name,
        sorted(vars(model)),
        [w.numpy().copy() for w in model.weights],
    )


def _same(before: tuple[Any, ...], after: tuple[Any, ...]) -> bool:
    return before[:3] == after[:3] and all(
        np.array_equal(a, b) for a, b in zip(before[3], after[3], strict=True)
    )


def test_composition_runs_in_float64_inside_the_block_only() -> None:
    model_0, model_1 = _split_cnn()
    x = _x()
    model_1(model_0(x))  # the user's models are built and used as they are
    before = [_snapshot(model_0), _snapshot(model_1)]
    loss = lambda t: tf.reduce_sum(model_1(model_0(t)) ** 2)  # noqa: E731
    plain = gc.check(loss, x)
    assert any("float32" in note for note in plain.notes), plain  # opaque float32 closure
    with float64_models(model_0, model_1):
        assert model_1(model_0(x)).dtype == tf.float64
        report = gc.check(loss, x)
    assert report.passed, report
    assert any("float64 clones" in note for note in report.notes), report
    assert not any("lower precision" in note for note in report.notes), report
    after = [_snapshot(model_0), _snapshot(model_1)]
    assert all(_same(b, a) for b, a in zip(before, after, strict=True))
    assert model_1(model_0(x)).dtype == tf.float32  # back to the user's models


def _composed_vjp(model_0: Any, model_1: Any, scale: float) -> Any:
    """d/dx sum(model_1(model_0(x))) composed by hand: dL/dh from model_1, J_0 by jacobian."""

    def grad(x: Any) -> Any:
        with tf.GradientTape() as tape_0:
            tape_0.watch(x)
            h = model_0(x)
        jacobian = tape_0.jacobian(h, x)  # h.shape + x.shape
        with tf.GradientTape() as tape_1:
            tape_1.watch(h)
            loss = tf.reduce_sum(model_1(h))
        upstream = tape_1.gradient(loss, h)
        axes = len(h.shape)
        return scale * tf.tensordot(upstream, jacobian, axes=[list(range(axes))] * 2)

    return grad


@pytest.mark.parametrize(("scale", "verdict"), [(1.0, "pass"), (1.01, "fail")])
def test_hand_composed_vjp_across_split_models(scale: float, verdict: str) -> None:
    model_0, model_1 = _split_cnn()
    x = _x()
    model_1(model_0(x))
    before = [_snapshot(model_0), _snapshot(model_1)]
    with float64_models(model_0, model_1):
        report = gc.check(
            lambda t: tf.reduce_sum(model_1(model_0(t))),
            x,
            grad=_composed_vjp(model_0, model_1, scale),
        )
    assert report.verdict == verdict, report
    assert all(
        _same(b, a) for b, a in zip(before, [_snapshot(model_0), _snapshot(model_1)], strict=True)
    )


def test_models_are_restored_when_the_block_raises() -> None:
    model_0, _ = _split_cnn()
    own = type(model_0)
    seen = []

    def fail_inside() -> None:
        with float64_models(model_0):
            seen.append(type(model_0))
            raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        fail_inside()
    assert seen[0] is not own
    assert type(model_0) is own


def test_models_option_of_check_runs_the_same_block() -> None:
    model_0, model_1 = _split_cnn()
    x = _x()
    model_1(model_0(x))
    before = [_snapshot(model_0), _snapshot(model_1)]
    report = gc.check(
        lambda t: tf.reduce_sum(model_1(model_0(t)) ** 2), x, models=[model_0, model_1]
    )
    assert report.passed, report
    assert any("float64 clones" in note for note in report.notes), report
    assert all(
        _same(b, a) for b, a in zip(before, [_snapshot(model_0), _snapshot(model_1)], strict=True)
    )
    with pytest.raises(gc.UsageError, match="models="):
        gc.check(lambda t: t.sum(), np.ones(3), grad=np.ones_like, models=[model_0])
