"""A custom `torch.autograd.Function` whose backward forgets the factor 2 of x².

The story: the backward of a squared-norm penalty was written from memory as `x *
grad_output`. Training still converges (slower, as with half the weight decay), so nothing
looks broken. `gradcheck audit examples/buggy/torch_custom_function.py` reports the analytic
gradient at half the numeric one and names the likely cause. `SquaredNorm` is also found on
its own, as a Function subclass, and fails at synthesised inputs too.
"""

import torch

import gradcheck


class SquaredNorm(torch.autograd.Function):
    """sum(x²), with a backward that forgets the factor 2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x * x).sum()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * x  # should be 2 * x * grad_output


@gradcheck.case(torch.tensor([0.5, -1.5, 2.0], dtype=torch.float64))
def penalty(x):
    """The squared-norm penalty, through the custom Function."""
    return SquaredNorm.apply(x)
