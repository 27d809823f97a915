"""Checks of the backward beside its numbers (undefined output gradients, batching), outputs
autograd does not differentiate, and forward mode that returns no tangent."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradcheck as gc  # noqa: E402
from gradcheck.adapters.torch import TorchAdapter  # noqa: E402


def bind(fn: Any, *inputs: Any, wrt: Any = None) -> Any:
    return TorchAdapter().bind(fn, inputs, {}, wrt)


def randn(*shape: int, seed: int = 0) -> Any:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def kind(report: Any, name: str) -> Any:
    (result,) = [c for c in report.checks if c.kind == name]
    return result


def two_outputs(none_as: str) -> Any:
    """(sin x, x²) with a backward that sees undefined gradients as None.

    none_as: "zeros" (right), "ones" (wrong: a nonzero gradient), "raise" (adds None) or
    "drop" (wrong: x²'s gradient is ignored when sin's is undefined).
    """

    class SinSquare(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            ctx.set_materialize_grads(False)
            ctx.save_for_backward(x)
            return x.sin(), x * x

        @staticmethod
        def backward(ctx: Any, g1: Any, g2: Any) -> Any:
            (x,) = ctx.saved_tensors
            if none_as == "raise":
                return g1 * x.cos() + g2 * 2 * x
            if none_as == "drop" and g1 is None:
                return torch.zeros_like(x)
            fill = torch.ones_like(x) if none_as == "ones" else torch.zeros_like(x)
            g1 = fill if g1 is None else g1
            g2 = fill if g2 is None else g2
            return g1 * x.cos() + g2 * 2 * x

    return SinSquare.apply


# -- undefined output gradients --------------------------------------------------------------


def test_a_backward_handling_undefined_gradients_passes() -> None:
    report = gc.check(two_outputs("zeros"), randn(3))
    assert report.verdict == "pass", report
    assert kind(report, "undefined_grad").verdict == "pass"


@pytest.mark.parametrize(
    ("none_as", "message"),
    [
        ("ones", "nonzero input gradients"),
        ("raise", "raised TypeError"),
        ("drop", "not change the defined ones"),
    ],
)
def test_a_backward_mishandling_undefined_gradients_fails(none_as: str, message: str) -> None:
    report = gc.check(two_outputs(none_as), randn(3))
    result = kind(report, "undefined_grad")
    assert result.verdict == "fail", report
    assert message in str(report)
    assert report.verdict == "fail"


def test_native_group_norm_drops_the_gradient_of_mean_when_the_outputs_is_undefined() -> None:
    """A real torch defect that its own check_undefined_grad misses (torch's Jacobian check
    sees it: analytic 0 for mean w.r.t. the input)."""
    x, w, b = randn(2, 4, 3), randn(4, seed=1), randn(4, seed=2)
    fn = lambda x, w, b: torch.native_group_norm(x, w, b, 2, 4, 3, 2, 1e-5)  # noqa: E731
    report = gc.check(fn, x, w, b)
    assert kind(report, "vjp").verdict == "pass", report
    assert kind(report, "undefined_grad").verdict == "fail", report
    assert "with only output[1]'s gradient defined" in str(report)


def test_undefined_gradients_of_a_plain_function_pass() -> None:
    report = gc.check(lambda x: (x.sin(), x.exp().sum()), randn(3))
    assert kind(report, "undefined_grad").verdict == "pass", report


# -- batched backward ------------------------------------------------------------------------


def scale_with_vmap_rule(factor: float) -> Any:
    """x·c whose backward calls a Function with a hand-written vmap rule off by `factor`."""

    class Mul(torch.autograd.Function):
        generate_vmap_rule = False

        @staticmethod
        def forward(g: Any, c: Any) -> Any:
            return g * c

        @staticmethod
        def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
            pass

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            return None, None

        @staticmethod
        def vmap(info: Any, in_dims: Any, g: Any, c: Any) -> Any:
            g = g.movedim(in_dims[0], 0) if in_dims[0] is not None else g
            return g * c * factor, 0

    class Sin(torch.autograd.Function):
        @staticmethod
        def forward(x: Any) -> Any:
            return x.sin()

        @staticmethod
        def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            (x,) = ctx.saved_tensors
            return Mul.apply(grad, x.cos())

    return Sin.apply


def test_a_right_vmap_rule_passes_the_batched_check() -> None:
    report = gc.check(scale_with_vmap_rule(1.0), randn(4), checks=("vjp", "batched_grad"))
    assert report.verdict == "pass", report
    assert kind(report, "batched_grad").verdict == "pass"


def test_a_wrong_vmap_rule_fails_the_batched_check() -> None:
    report = gc.check(scale_with_vmap_rule(2.0), randn(4), checks=("vjp", "batched_grad"))
    assert kind(report, "batched_grad").verdict == "fail", report
    assert kind(report, "vjp").verdict == "pass"


def test_vjps_are_one_batched_backward_and_agree_with_single_ones() -> None:
    f = bind(lambda x: (x.sin() * x.roll(1)).cumsum(0), randn(6))
    us = np.random.default_rng(0).standard_normal((6, 6))
    batched = f.vjps(f.x0, us)
    assert f._batching.works.get("batched VJPs") is True
    np.testing.assert_allclose(batched, np.stack([f.vjp(f.x0, u) for u in us]), atol=1e-12)


def test_vjps_fall_back_to_a_loop_with_one_note_when_batching_fails() -> None:
    class NoBatch(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return x * 3

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            return torch.from_numpy(grad.numpy() * 3)  # cannot run on batched tensors

    f = bind(NoBatch.apply, randn(4))
    np.testing.assert_allclose(f.vjps(f.x0, np.eye(4)), 3 * np.eye(4))
    assert sum("batched VJPs are evaluated in a loop" in n for n in f.notes) == 1, f.notes
    assert gc.check(NoBatch.apply, randn(4)).verdict == "pass"


# -- outputs autograd does not differentiate -------------------------------------------------


def test_saved_statistics_of_native_layer_norm_are_left_out_with_a_note() -> None:
    x, w, b = randn(3, 4), randn(4, seed=1), randn(4, seed=2)
    fn = lambda x, w, b: torch.native_layer_norm(x, [4], w, b, 1e-5)  # noqa: E731
    report = gc.check(fn, x, w, b)
    assert report.verdict == "pass", report
    text = str(report)
    assert "output[1] does not require grad" in text
    assert "output[2] does not require grad" in text


def test_native_batch_norm_in_training_passes() -> None:
    x, w, b = randn(4, 3), randn(3, seed=1), randn(3, seed=2)
    fn = lambda x, w, b: torch.native_batch_norm(x, w, b, None, None, True, 0.1, 1e-5)  # noqa: E731
    assert gc.check(fn, x, w, b).verdict == "pass"


def test_mark_non_differentiable_output_is_left_out() -> None:
    class SortValues(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            rank = x.argsort().to(x.dtype)
            ctx.mark_non_differentiable(rank)
            return x * 2, rank

        @staticmethod
        def backward(ctx: Any, grad: Any, _: Any) -> Any:
            return grad * 2

    report = gc.check(SortValues.apply, randn(3))
    assert report.verdict == "pass", report
    assert "output[1] does not require grad" in str(report)


def test_a_single_output_cut_from_its_input_still_fails() -> None:
    assert gc.check(lambda x: x.detach().sin(), randn(3)).verdict == "fail"


# -- forward mode without a tangent ----------------------------------------------------------


def _custom_sin() -> Any:
    name = f"gradcheck_tests::sin_{sys.hexversion}"
    if hasattr(torch.ops.gradcheck_tests, name.split("::")[1]):
        return getattr(torch.ops.gradcheck_tests, name.split("::")[1])

    @torch.library.custom_op(name, mutates_args=())
    def sin(x: torch.Tensor) -> torch.Tensor:
        return x.sin()

    @sin.register_fake
    def _(x: Any) -> Any:
        return torch.empty_like(x)

    def setup(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.save_for_backward(inputs[0])

    def backward(ctx: Any, grad: Any) -> Any:
        (x,) = ctx.saved_tensors
        return grad * x.cos()

    sin.register_autograd(backward, setup_context=setup)
    return sin


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_custom_op_without_forward_rule_passes_in_reverse_mode(
    mode: str, capfd: pytest.CaptureFixture[str]
) -> None:
    op = _custom_sin()
    report = gc.check(lambda x: op(x) * 2, randn(4), mode=mode)
    assert report.verdict == "pass", report
    text = str(report)
    assert "forward mode is not implemented" in text
    assert "returns zeros silently" in text
    assert "BatchedFallback" not in capfd.readouterr().err
    assert sum("has no batching rule for gradcheck_tests::sin" in n for n in report.notes) == 1


def test_scatter_reduce_prod_skips_forward_mode() -> None:
    index = torch.tensor([0, 1, 0, 1])
    fn = lambda x: torch.ones(2).scatter_reduce(0, index, x, reduce="prod")  # noqa: E731
    report = gc.check(fn, randn(4) + 2)
    assert report.verdict == "pass", report
    assert "forward mode is not implemented" in str(report)


class RaisingBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        return x * 2

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        raise ValueError("my backward is broken")


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_backward_that_raises_is_a_failure_not_a_traceback(mode: str, dtype: Any) -> None:
    report = gc.check(RaisingBackward.apply, torch.randn(3, dtype=dtype), mode=mode)
    assert report.verdict == "fail", report
    assert "the backward raised at the point (ValueError: my backward is broken)" in str(report)


class NoFloat64Backward(torch.autograd.Function):
    """A backward that only runs in float32, like torch's float64 CPU conv_transpose2d
    backward on the permuted kernel Keras passes ("grad_weight needs to be contiguous")."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        return x * 2

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        if grad.dtype == torch.float64:
            raise RuntimeError("not implemented for float64")
        return grad * 2


def test_a_backward_that_raises_only_on_the_float64_copy_is_inconclusive() -> None:
    report = gc.check(NoFloat64Backward.apply, torch.randn(3, dtype=torch.float32))
    assert report.verdict == "inconclusive", report
    assert "raised on the float64 copy (RuntimeError: not implemented for float64)" in str(report)
