"""A Keras `Lambda` swish whose gate is detached from the gradient.

The story: to save memory, the sigmoid gate of swish, t·sigmoid(t), was wrapped in
`keras.ops.stop_gradient` ("it is only a gate"). The forward is unchanged, so the loss curve
looks plausible, but the gradient now misses the t·sigmoid'(t) term: every weight below the
lambda gets a wrong gradient. `gradcheck audit examples/buggy/keras_lambda.py` compares the
model's gradients with respect to inputs and weights with finite differences and flags them.
"""

import keras
import numpy as np

import gradcheck

inputs = keras.Input((4,))
hidden = keras.layers.Dense(
    3, activation="tanh", kernel_initializer=keras.initializers.GlorotUniform(seed=0)
)(inputs)
swish = keras.layers.Lambda(lambda t: t * keras.ops.stop_gradient(keras.ops.sigmoid(t)))(hidden)
outputs = keras.layers.Dense(2, kernel_initializer=keras.initializers.GlorotUniform(seed=1))(swish)
model = keras.Model(inputs, outputs, name="detached_swish_model")

X = np.random.default_rng(0).standard_normal((2, 4))
gradcheck.case(X, wrt="inputs", name="detached_swish_model wrt inputs")(model)
gradcheck.case(X, wrt="params", name="detached_swish_model wrt weights")(model)
