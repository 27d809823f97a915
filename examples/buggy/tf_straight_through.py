"""Straight-through and gradient reversal done wrong: a misplaced parenthesis, a forgotten λ.

The story: (1) the straight-through trick written `x + stop_gradient(sign(x)) − x`: the
forward is still sign(x), but the two x terms cancel in the gradient too, which comes out 0
— the override is not in effect and the binarised layer never learns. (2) A gradient
reversal whose backward returns −dy, forgetting the λ that the paper anneals from 0 to 1: the
domain classifier's gradient hits the feature extractor at full strength from the first
step. `gradcheck audit examples/buggy/tf_straight_through.py` flags both against their
surrogates.
"""

import tensorflow as tf

import gradcheck

X = tf.constant([-1.3, -0.4, 0.2, 0.9, 2.1], dtype=tf.float64)
WEIGHTS = tf.constant([0.5, -1.0, 2.0, 0.3, -0.7], dtype=tf.float64)
LAMBDA = 0.3


@gradcheck.case(X, surrogate=lambda x: tf.reduce_sum(WEIGHTS * x))
def binary_layer(x):
    """A weighted sum of sign(x); the stop_gradient trick with a misplaced parenthesis."""
    quantised = x + tf.stop_gradient(tf.sign(x)) - x
    return tf.reduce_sum(WEIGHTS * quantised)


@gradcheck.case(X, surrogate=lambda x: -LAMBDA * x)
@tf.custom_gradient
def reverse_gradient(x):
    """The identity forward; the backward forgets λ."""

    def grad(dy):
        return -dy

    return tf.identity(x), grad
