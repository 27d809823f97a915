"""The split CNN's manual chain rule with a missing transpose.

The story: the head's Jacobian ∂y/∂z is square (six outputs, six features), so multiplying
by it instead of its transpose raises no shape error: `einsum("bij,bj->bi")` where
`einsum("bij,bi->bj")` was meant. The saliency maps look like saliency maps.
`gradcheck audit examples/buggy/keras_split_cnn.py` compares the chained gradient with finite
differences and flags every entry.
"""

import keras
import numpy as np
import tensorflow as tf

import gradcheck


def _seeded(k):
    return keras.initializers.GlorotUniform(seed=k)


features = keras.Sequential(
    [
        keras.Input((4, 4, 1), dtype="float64"),
        keras.layers.Conv2D(
            2, 3, activation="tanh", dtype="float64", kernel_initializer=_seeded(0)
        ),
        keras.layers.Flatten(dtype="float64"),
        keras.layers.Dense(6, activation="tanh", dtype="float64", kernel_initializer=_seeded(1)),
    ],
    name="features",
)
head = keras.Sequential(
    [
        keras.Input((6,), dtype="float64"),
        keras.layers.Dense(6, activation="tanh", dtype="float64", kernel_initializer=_seeded(2)),
    ],
    name="head",
)
WEIGHTS = tf.constant(np.linspace(-1.0, 1.0, 6), dtype=tf.float64)
IMAGES = tf.constant(np.random.default_rng(0).standard_normal((2, 4, 4, 1)))


def loss(x):
    """L(x) = Σ_b w·head(features(x_b)): the two models joined."""
    return tf.reduce_sum(WEIGHTS * head(features(x)))


def manual_gradient(x):
    """∂L/∂x by the chain rule across the two models — with the head's Jacobian untransposed."""
    x = tf.convert_to_tensor(x, dtype=tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = features(x)
    dz_dx = tape.jacobian(z, x)
    with tf.GradientTape() as tape:
        tape.watch(z)
        y = head(z)
    dy_dz = tape.batch_jacobian(y, z)
    dl_dy = tf.broadcast_to(WEIGHTS, y.shape)
    dl_dz = tf.einsum("bij,bj->bi", dy_dz, dl_dy)  # should be "bij,bi->bj": (∂y/∂z)ᵀ ∂L/∂y
    return tf.einsum("bj,bjcuvw->cuvw", dl_dz, dz_dx)


gradcheck.case(IMAGES, grad=manual_gradient, name="loss by the manual chain rule")(loss)
