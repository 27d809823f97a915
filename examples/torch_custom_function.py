"""A custom `torch.autograd.Function` whose hand-written backward is checked against numbers.

The story: log(cosh(x)) overflows in float64 for |x| > 710, so the forward is rewritten as
|x| + log1p(exp(-2|x|)) - log 2, and autograd would differentiate that rewrite through `abs`,
kinked at 0. A custom Function gives the backward by hand, tanh(x), smooth everywhere. Is it
right, including at large |x| where the forward is the rewrite? `gradcheck audit` runs the
declared case, and it also finds `LogCosh` on its own (a Function subclass) and checks it at
synthesised inputs. The same Function with a forgotten factor is in
`examples/buggy/torch_custom_function.py`.
"""

import math

import torch

import gradcheck


class LogCosh(torch.autograd.Function):
    """log(cosh(x)), stable for any |x|, with the exact derivative tanh(x) as its backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.abs() + torch.log1p(torch.exp(-2 * x.abs())) - math.log(2.0)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * torch.tanh(x)


@gradcheck.case(torch.tensor([-800.0, -2.0, 0.3, 5.0, 900.0], dtype=torch.float64))
def log_cosh_loss(x):
    """sum(log cosh x), through the custom Function, with |x| far past cosh's overflow."""
    return LogCosh.apply(x).sum()
