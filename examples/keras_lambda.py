"""A Keras 3 model with a `Lambda` layer, checked with respect to its inputs and its weights.

The story: a model uses swish, t·sigmoid(t), written inline as a `keras.layers.Lambda`. How
does Keras differentiate a user's lambda — does it need a gradient for it? It does not: the
lambda is built from `keras.ops`, and the backend's autodiff goes through those ops like any
other layer's. gradcheck shows that the result is right, for the input (saliency, adversarial
examples) and for every weight (training), on a float64 clone that leaves the model as it
is. The model is also found on its own by `gradcheck audit` (a Keras model instance) and
checked at inputs of its declared input shape. The lambda done wrong is in
`examples/buggy/keras_lambda.py`.
"""

import keras
import numpy as np

import gradcheck

inputs = keras.Input((4,))
hidden = keras.layers.Dense(
    3, activation="tanh", kernel_initializer=keras.initializers.GlorotUniform(seed=0)
)(inputs)
swish = keras.layers.Lambda(lambda t: t * keras.ops.sigmoid(t), name="swish")(hidden)
outputs = keras.layers.Dense(2, kernel_initializer=keras.initializers.GlorotUniform(seed=1))(swish)
model = keras.Model(inputs, outputs, name="swish_model")

X = np.random.default_rng(0).standard_normal((2, 4))
gradcheck.case(X, wrt="inputs", name="swish_model wrt inputs")(model)
gradcheck.case(X, wrt="params", name="swish_model wrt weights")(model)
