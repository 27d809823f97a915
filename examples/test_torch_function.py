"""A custom `torch.autograd.Function`, tested the way a library would: the `gradcheck` fixture.

Run with ``pytest examples/test_torch_function.py``. The fixture asserts: a wrong backward
fails the test with the worst entries, the likely cause and a one-line reproducer.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import gradcheck as gc
import gradcheck.strategies as gst

pytest.importorskip("torch")
import torch  # after the skip: each example needs only its framework

# The gradcheck fixture is function-scoped, so hypothesis hands one instance to every example
# of a test and warns about it. That is safe here: the checker keeps no state between calls
# (it only adds each check to the test's record), so the warning is suppressed on purpose.
SHARED_FIXTURE = settings(
    max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class LogCosh(torch.autograd.Function):
    """log(cosh(x)) without overflow for large |x|; its derivative is tanh(x).

    Written in the functorch style (`setup_context`, `generate_vmap_rule`) so that gradcheck
    can vmap it, with a `jvp` so that forward mode is checked as well as backward.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Any) -> Any:
        return x.abs() + torch.nn.functional.softplus(-2 * x.abs()) - math.log(2.0)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        (x,) = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        (x,) = ctx.saved_tensors
        return grad * torch.tanh(x)

    @staticmethod
    def jvp(ctx: Any, tangent: Any) -> Any:
        (x,) = ctx.saved_tensors
        return torch.tanh(x) * tangent


def log_cosh(x: Any) -> Any:
    return LogCosh.apply(x)  # type: ignore[no-untyped-call]  # torch leaves apply untyped


def test_at_a_point(gradcheck: Any) -> None:
    report = gradcheck(log_cosh, torch.tensor([-3.0, -0.5, 0.0, 0.25, 40.0], dtype=torch.float64))
    assert report.framework == "torch"


# Away from 0, where the forward's |x| pieces meet and cancel: below |x| ~ 1e-8 the value
# rounds to exactly 0, so finite differences see a flat function while tanh(x) is not zero.
# test_at_a_point checks 0 itself.
@SHARED_FIXTURE
@given(x=gst.arrays((2, 3), framework="torch", bound=50.0, kinks=(0.0,)))
def test_everywhere(gradcheck: Any, x: Any) -> None:
    gradcheck(log_cosh, x)


@pytest.mark.gradcheck(order=2)  # backward is built from torch ops: its own derivative too
def test_second_derivative(gradcheck: Any) -> None:
    gradcheck(lambda x: log_cosh(x).sum(), torch.tensor([-1.5, 0.3, 2.0], dtype=torch.float64))


@pytest.mark.gradcheck(mode="fast", seed=1)  # random projections: cost independent of size
@settings(SHARED_FIXTURE, max_examples=5)
@given(x=gst.arrays((64, 64), framework="torch", dtype="float32", bound=5.0))
def test_large_float32_input(gradcheck: Any, x: Any) -> None:
    gradcheck(log_cosh, x)


def test_a_backward_that_ignores_its_incoming_gradient_fails(gradcheck: Any) -> None:
    class Forgetful(LogCosh):
        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            (x,) = ctx.saved_tensors
            return torch.tanh(x)  # the bug: `grad *` is missing

    x = torch.tensor([-0.5, 0.25, 2.0], dtype=torch.float64)
    with pytest.raises(gc.GradientError) as failure:
        gradcheck(Forgetful.apply, x)
    assert failure.value.report.verdict == "fail"
