"""Guided backpropagation whose override is not in effect: the plain ReLU gradient comes back.

The story: the model picks its activation through a default argument, and guided mode is
switched on afterwards by rebinding the module-level name. The default was bound when the
function was defined, so the rebinding changes nothing: the "saliency maps" are plain
gradients, the code runs, the shapes are right. `gradcheck audit
examples/buggy/torch_guided_backprop.py` compares the gradient with the declared surrogate
and reports that the override is NOT in effect (the gradient equals the forward's own).
"""

import torch

import gradcheck

GEN = torch.Generator().manual_seed(6)
W1 = torch.randn(6, 4, generator=GEN, dtype=torch.float64)
W2 = torch.randn(6, generator=GEN, dtype=torch.float64)
IMAGE = torch.randn(4, generator=GEN, dtype=torch.float64)


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


ACTIVATION = torch.relu


def guided_surrogate(x):
    """What guided backprop of the class score equals: the gradient of this function."""
    return W2.clamp(min=0) @ torch.relu(W1 @ x)


@gradcheck.case(IMAGE, surrogate=guided_surrogate, mode="full")
def class_score(x, activation=ACTIVATION):
    """The class score; `activation` was bound to torch.relu when this line ran."""
    return W2 @ activation(W1 @ x)


ACTIVATION = GuidedReLU.apply  # "guided mode on": too late, class_score keeps torch.relu
