"""A custom Keras 3 layer, tested with the `gradcheck` fixture: inputs and weights together.

Run with ``pytest examples/test_keras_layer.py``. gradcheck checks a float64 clone of the
layer, so the layer, its float32 weights and the Keras dtype policy are left as they were.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import gradcheck.strategies as gst

pytest.importorskip("keras")
pytest.importorskip("tensorflow")
import keras  # after the skip: each example needs only its framework
import tensorflow as tf

# The function-scoped gradcheck fixture is shared by a test's examples; it keeps no state
# between them, so hypothesis' health check about it is suppressed on purpose.
SHARED_FIXTURE = settings(
    max_examples=3, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class RadialBasis(keras.layers.Layer):  # type: ignore[misc]  # Keras has no types
    """exp(-|x - c_j|² / (2 w_j²)) for trainable centres c_j and widths w_j."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.centres = self.add_weight(shape=(input_shape[-1], self.units), name="centres")
        self.widths = self.add_weight(shape=(self.units,), initializer="ones", name="widths")

    def call(self, x: Any) -> Any:
        ops = keras.ops
        distance = ops.sum((ops.expand_dims(x, -1) - self.centres) ** 2, axis=-2)
        return ops.exp(-distance / (2 * self.widths**2))


@pytest.fixture(scope="module")
def layer() -> RadialBasis:
    keras.utils.set_random_seed(0)
    layer = RadialBasis(3)
    layer.build((None, 2))
    return layer


def test_inputs_and_weights(gradcheck: Any, layer: RadialBasis) -> None:
    report = gradcheck(layer, tf.constant([[0.5, -1.0], [0.2, 0.3]], dtype=tf.float32), wrt="all")
    assert [leaf.split(":")[0] for leaf in report.inputs] == [
        "input[0]",
        "params['radial_basis/centres']",
        "params['radial_basis/widths']",
    ]


@SHARED_FIXTURE
@given(x=gst.arrays((4, 2), framework="tensorflow", bound=2.0))
def test_any_batch(gradcheck: Any, layer: RadialBasis, x: Any) -> None:
    before = [w.numpy().copy() for w in layer.weights]
    gradcheck(layer, x, wrt="all")
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, layer.weights, strict=True))
