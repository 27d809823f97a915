"""Straight-through sign and gradient reversal in TensorFlow: overrides shown to be in effect.

The story: a binarised network quantises with sign(x), whose derivative is 0 almost
everywhere, so training passes the gradient "straight through" as if sign were the
identity. Two common ways to write it: the `t + stop_gradient(f(t) − t)` trick, and
`tf.custom_gradient`. A domain-adaptation model reverses gradients between its feature
extractor and its domain classifier: the identity forward, −λ·dy backward. None of these
gradients is the forward's derivative, on purpose, so each case declares a `surrogate`: the
function whose plain derivative the override must equal (x for straight-through, −λx for
reversal). gradcheck passes them when the override runs, and says when it is not in effect.
The same scenarios done wrong are in `examples/buggy/tf_straight_through.py`.
"""

import tensorflow as tf

import gradcheck

X = tf.constant([-1.3, -0.4, 0.2, 0.9, 2.1], dtype=tf.float64)  # away from sign's jump at 0
WEIGHTS = tf.constant([0.5, -1.0, 2.0, 0.3, -0.7], dtype=tf.float64)
LAMBDA = 0.3


@gradcheck.case(X, surrogate=lambda x: tf.reduce_sum(WEIGHTS * x))
def binary_layer(x):
    """A weighted sum of sign(x), straight-through by the stop_gradient trick."""
    quantised = x + tf.stop_gradient(tf.sign(x) - x)
    return tf.reduce_sum(WEIGHTS * quantised)


@gradcheck.case(X, surrogate=lambda x: x)
@tf.custom_gradient
def sign_ste(x):
    """sign(x) forward, the identity's gradient backward."""

    def grad(dy):
        return dy

    return tf.sign(x), grad


@gradcheck.case(X, surrogate=lambda x: -LAMBDA * x)
@tf.custom_gradient
def reverse_gradient(x):
    """The identity forward, −λ times the incoming gradient backward."""

    def grad(dy):
        return -LAMBDA * dy

    return tf.identity(x), grad
