"""Guided backpropagation in PyTensor: a ReLU whose gradient is replaced, shown to be in effect.

The story. A Lasagne/Theano user computed saliency maps by guided backpropagation: every ReLU
passes back only positive gradient, and only where its input was positive. The recipe wrapped
the ReLU in an `OpFromGraph` and replaced its gradient. The model ran and the shapes were
right, but the saliency maps were plain gradients: the override was never invoked (see
`examples/buggy/pytensor_guided_backprop.py`). Here the override is given the way PyTensor
calls it, `OpFromGraph(..., pullback=...)`.

What should guided backprop equal? It is not the gradient of the network, but for class
scores read out linearly from one hidden layer, s(x) = W2 relu(W1 x), it is the gradient of a
surrogate: class i sends w2[i, j] back to hidden unit j, and the guided ReLU keeps it only
where it is positive, so the saliency of class i is the plain gradient of
max(W2, 0) relu(W1 x). With that surrogate declared, `gc.check` passes when the override runs
and reports "override is NOT in effect" when the plain ReLU gradient comes back.

Run `python -m gradcheck audit examples/pytensor_guided_backprop.py` (full mode, the default:
guided backprop is not linear in the incoming gradient, so random projections do not apply).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph

import gradcheck

RNG = np.random.default_rng(6)
W1 = RNG.standard_normal((6, 4)).astype(np.float32)  # hidden layer
W2 = RNG.standard_normal((3, 6)).astype(np.float32)  # class scores, weights of both signs
IMAGE = RNG.standard_normal(4).astype(np.float32)  # no hidden unit sits at its kink


class GuidedBackprop:
    """A nonlinearity whose pullback passes only positive gradient where its input was positive.

    One `OpFromGraph` per input type, created on first use, as in the Lasagne recipe.
    """

    def __init__(self, nonlinearity: Any) -> None:
        self.nonlinearity = nonlinearity
        self.ops: dict[Any, OpFromGraph] = {}

    def __call__(self, x: Any) -> Any:
        if x.type not in self.ops:
            inp = x.type()
            self.ops[x.type] = OpFromGraph(
                [inp], [self.nonlinearity(inp)], pullback=self.pullback, name="GuidedReLU"
            )
        return self.ops[x.type](x)

    @staticmethod
    def pullback(inputs: list[Any], outputs: list[Any], cotangents: list[Any]) -> list[Any]:
        (x,), (g,) = inputs, cotangents
        return [g * pt.gt(x, 0).astype(g.dtype) * pt.gt(g, 0).astype(g.dtype)]


guided_relu = GuidedBackprop(lambda x: pt.maximum(x, 0))


def positive_paths(image: Any) -> Any:
    """The surrogate: the class scores with negative read-out weights cut, plain ReLU."""
    return pt.matmul(np.maximum(W2, 0), pt.maximum(pt.matmul(W1, image), 0))


@gradcheck.case(IMAGE, framework="pytensor", surrogate=positive_paths)
def class_scores(image: Any) -> Any:
    """Class scores of a one-hidden-layer network whose ReLU backpropagates guidedly."""
    return pt.matmul(W2, guided_relu(pt.matmul(W1, image)))
