"""A CNN split into two Keras models, its gradient chained by hand with tape Jacobians.

The story: a convolutional feature extractor and a dense head live in two separate models
(trained by two teams, or split across devices), and the gradient of the loss with respect to
the image is needed — for saliency — without joining them. The chain rule by hand: the head's
per-example Jacobian ∂y/∂z (`GradientTape.batch_jacobian`), the extractor's Jacobian ∂z/∂x
(`GradientTape.jacobian`), and ∂L/∂x = (∂z/∂x)ᵀ (∂y/∂z)ᵀ ∂L/∂y. Two cases: the manual chain
(`grad=`) against the numbers, and the joined models through the tape. The models are
float64 (`dtype="float64"`), so that the check is about the chain rule, not float32 round-off.
A missing transpose is in `examples/buggy/keras_split_cnn.py`.
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
WEIGHTS = tf.constant(np.linspace(-1.0, 1.0, 6), dtype=tf.float64)  # the loss reads y linearly
IMAGES = tf.constant(np.random.default_rng(0).standard_normal((2, 4, 4, 1)))


def loss(x):
    """L(x) = Σ_b w·head(features(x_b)): the two models joined."""
    return tf.reduce_sum(WEIGHTS * head(features(x)))


def manual_gradient(x):
    """∂L/∂x by the chain rule across the two models."""
    x = tf.convert_to_tensor(x, dtype=tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = features(x)
    dz_dx = tape.jacobian(z, x)  # (batch, 6, batch, 4, 4, 1): examples do not mix
    with tf.GradientTape() as tape:
        tape.watch(z)
        y = head(z)
    dy_dz = tape.batch_jacobian(y, z)  # (batch, 6 outputs, 6 inputs)
    dl_dy = tf.broadcast_to(WEIGHTS, y.shape)
    dl_dz = tf.einsum("bij,bi->bj", dy_dz, dl_dy)  # (∂y/∂z)ᵀ ∂L/∂y
    return tf.einsum("bj,bjcuvw->cuvw", dl_dz, dz_dx)  # (∂z/∂x)ᵀ ∂L/∂z


gradcheck.case(IMAGES, grad=manual_gradient, name="loss by the manual chain rule")(loss)
gradcheck.case(IMAGES, name="loss through the tape")(loss)
