"""A test suite written for torch.autograd.gradcheck, as PyTorch users write them.

tests/compat/test_compat.py runs it twice: as written, and with only the import line swapped
for `from gradcheck.compat import gradcheck, gradgradcheck`. Both runs must pass.
"""

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck


def double(*shape):
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


class Softplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.nn.functional.softplus(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x)


class WrongSoftplus(Softplus):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x) * 1.01


def test_elementwise():
    x = double(5).requires_grad_()
    assert gradcheck(torch.tanh, (x,))


def test_single_tensor_input():
    assert gradcheck(torch.exp, double(3).requires_grad_())


def test_two_inputs_one_without_grad():
    x, w = double(4, 3).requires_grad_(), double(3, 2)
    assert gradcheck(torch.matmul, (x, w))


def test_non_tensor_argument():
    x = double(3, 4).requires_grad_()
    assert gradcheck(lambda t, dim: t.softmax(dim), (x, 1))


def test_custom_function():
    assert gradcheck(Softplus.apply, (double(6).requires_grad_(),))


def test_custom_function_bug_raises():
    with pytest.raises(RuntimeError):
        gradcheck(WrongSoftplus.apply, (double(6).requires_grad_(),))


def test_custom_function_bug_returns_false():
    assert not gradcheck(WrongSoftplus.apply, (double(6).requires_grad_(),), raise_exception=False)


def test_multiple_outputs():
    x = double(4).requires_grad_()
    assert gradcheck(lambda t: (t.sin(), t.cos() * 2), (x,))


def test_forward_ad():
    x = double(4).requires_grad_()
    assert gradcheck(torch.sigmoid, (x,), check_forward_ad=True)


def test_fast_mode():
    x = double(20).requires_grad_()
    assert gradcheck(lambda t: (t**3).sum(), (x,), fast_mode=True)


def test_explicit_tolerances():
    x = double(3).requires_grad_()
    assert gradcheck(torch.sin, (x,), eps=1e-6, atol=1e-5, rtol=1e-3)


def test_module():
    layer = torch.nn.Linear(3, 2).double()
    x = double(4, 3).requires_grad_()
    assert gradcheck(layer, (x,))


def test_second_order():
    x = double(3).requires_grad_()
    assert gradgradcheck(lambda t: (t.sin() * t).sum(), (x,))


def test_second_order_with_grad_outputs():
    x = double(3).requires_grad_()
    assert gradgradcheck(torch.tanh, (x,), (double(3),))


def test_no_input_requires_grad():
    with pytest.raises(ValueError, match="requires_grad=True"):
        gradcheck(torch.sin, (double(3),))
