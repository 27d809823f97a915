"""Guided backpropagation done the Theano way: the gradient override is never invoked.

The Lasagne recipe this reproduces built an `OpFromGraph` for the ReLU and then replaced its
gradient by assigning a method: `op.grad = self.grad`. Theano's OpFromGraph later computed
gradients through `L_op`, and PyTensor's through `pullback`, so the assigned `grad` is never
called. Nothing fails: the model runs, shapes are right, and every saliency map is the plain
gradient. (`OpFromGraph(..., grad_overrides=...)`, Theano's keyword, is as silent under
PyTensor's default numba linker or with `inline=True`: it is taken for a compilation option.)

`gc.check` with the guided-backprop surrogate catches it: the analytic gradient differs from
the surrogate's and equals the plain ReLU network's own derivative, which the report calls
"the override is NOT in effect". The fix is `OpFromGraph(..., pullback=self.pullback)`, as in
`examples/pytensor_guided_backprop.py`.
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


class ModifiedBackprop:
    """A nonlinearity with a replaced gradient, as the Lasagne recipe wrote it."""

    def __init__(self, nonlinearity: Any) -> None:
        self.nonlinearity = nonlinearity
        self.ops: dict[Any, OpFromGraph] = {}

    def __call__(self, x: Any) -> Any:
        if x.type not in self.ops:
            inp = x.type()
            op = OpFromGraph([inp], [self.nonlinearity(inp)])
            # The bug: PyTensor never calls an Op's `grad` (mypy objects to the assignment too).
            op.grad = self.grad  # type: ignore[method-assign, assignment]
            self.ops[x.type] = op
        return self.ops[x.type](x)

    @staticmethod
    def grad(inputs: list[Any], out_grads: list[Any]) -> list[Any]:
        (x,), (g,) = inputs, out_grads
        return [g * pt.gt(x, 0).astype(g.dtype) * pt.gt(g, 0).astype(g.dtype)]


guided_relu = ModifiedBackprop(lambda x: pt.maximum(x, 0))


def positive_paths(image: Any) -> Any:
    """The surrogate: the class scores with negative read-out weights cut, plain ReLU."""
    return pt.matmul(np.maximum(W2, 0), pt.maximum(pt.matmul(W1, image), 0))


@gradcheck.case(IMAGE, framework="pytensor", surrogate=positive_paths)
def class_scores(image: Any) -> Any:
    """Class scores whose ReLU was meant to backpropagate guidedly (it does not)."""
    return pt.matmul(W2, guided_relu(pt.matmul(W1, image)))
