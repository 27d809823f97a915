"""Guided backpropagation in PyTorch: a ReLU whose gradient is overridden, shown to be in effect.

The story: saliency maps by guided backpropagation replace every ReLU's gradient: it passes
back only positive gradient, and only where its input was positive. The override is a custom
`autograd.Function`, so gradcheck cannot compare it with the forward's own derivative — it is
*meant* to differ. What it should equal is declared as a surrogate: for a class score read out
linearly from one hidden layer, s(x) = w₂ · relu(W₁x), the guided saliency is the plain
gradient of max(w₂, 0) · relu(W₁x). The check passes when the override runs, and says
"override is NOT in effect" when the plain ReLU gradient comes back, as it does in
`examples/buggy/torch_guided_backprop.py`. Full mode on purpose: guided backprop is not linear
in the incoming gradient, so random projections (fast mode) do not apply.
"""

import torch

import gradcheck

GEN = torch.Generator().manual_seed(6)
W1 = torch.randn(6, 4, generator=GEN, dtype=torch.float64)  # hidden layer
W2 = torch.randn(6, generator=GEN, dtype=torch.float64)  # one class score, weights of both signs
IMAGE = torch.randn(4, generator=GEN, dtype=torch.float64)  # no hidden unit sits at its kink


@gradcheck.case(skip="a gradient override: checked through class_score against its surrogate")
class GuidedReLU(torch.autograd.Function):
    """relu forward; backward passes gradient only where both it and the input are positive."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output.clamp(min=0) * (x > 0)


def guided_surrogate(x):
    """What guided backprop of the class score equals: the gradient of this function."""
    return W2.clamp(min=0) @ torch.relu(W1 @ x)


@gradcheck.case(IMAGE, surrogate=guided_surrogate, mode="full")
def class_score(x):
    """The class score, with every ReLU guided."""
    return W2 @ GuidedReLU.apply(W1 @ x)
