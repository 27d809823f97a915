"""What users of torch.autograd.gradcheck bring with them: closures over float32 models, the
inputs tuple, side arguments, masks of -inf, compiled functions, random numbers."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradcheck as gc  # noqa: E402


def randn(*shape: int, seed: int = 0, dtype: Any = torch.float64) -> Any:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


class MySoftplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        ctx.save_for_backward(x)
        return torch.nn.functional.softplus(x)

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x)


class WrongExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        (y,) = ctx.saved_tensors
        return grad * y * 1.01


# -- closures over float32 models ------------------------------------------------------------


def relu_mlp(seed: int) -> Any:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(8, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 1),
    )


def test_closure_over_a_float32_conv_model_is_checked_through_a_float64_clone() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(8, 1)
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = randn(1, 1, 4, 4, dtype=torch.float32)
    report = gc.check(lambda x: model(x).sum(), x)
    assert report.verdict == "pass", report
    assert "float64 clones of Sequential" in str(report)
    assert "forward" not in vars(model)
    assert "forward" not in vars(model[0])
    for key, value in model.state_dict().items():
        assert value.dtype == torch.float32
        assert torch.equal(value, before[key])


@pytest.mark.parametrize("seed", range(8))
def test_closures_over_float32_relu_mlps_pass_where_float32_noise_crossed_kinks(
    seed: int,
) -> None:
    """In float32 these failed on 9 of 20 seeds: noise pushed the steps past relu kinks."""
    net = relu_mlp(seed)
    x, y = randn(4, 8, seed=seed, dtype=torch.float32), randn(4, 1, seed=99, dtype=torch.float32)
    report = gc.check(lambda inp: ((net(inp) - y) ** 2).mean(), x)
    assert report.verdict == "pass", report


def test_a_wrong_backward_inside_a_captured_float32_model_still_fails() -> None:
    class Wrong(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return WrongExp.apply(x)

    net = torch.nn.Sequential(torch.nn.Linear(3, 3), Wrong())
    report = gc.check(lambda x: net(x).sum(), randn(2, 3, dtype=torch.float32))
    assert report.verdict == "fail", report
    assert "float64 clones" in str(report)


def test_a_captured_float32_tensor_in_a_matmul_is_checked_in_its_own_dtype() -> None:
    w = randn(3, 2, dtype=torch.float32)
    report = gc.check(lambda x: (x @ w).tanh().sum(), randn(4, 3, dtype=torch.float32))
    assert report.verdict == "pass", report
    assert "checked in the user's dtype (float32)" in str(report)


def test_an_error_of_a_closure_capturing_nothing_in_float32_propagates() -> None:
    def broken(x: Any) -> Any:
        raise RuntimeError("the user's own bug")

    with pytest.raises(RuntimeError, match="the user's own bug"):
        gc.check(broken, randn(3, dtype=torch.float32))


# -- the inputs tuple ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "inputs"),
    [
        (lambda x, y: (x * y).sum(), (randn(3), randn(3, seed=1))),
        (lambda x: x.sin(), (randn(3),)),
    ],
    ids=["two-inputs", "one-input"],
)
def test_torch_style_inputs_tuple_says_what_was_meant(fn: Any, inputs: Any) -> None:
    with pytest.raises(gc.UsageError, match=r"did you mean gc\.check\(f, \*inputs\)\?"):
        gc.check(fn, inputs)


def test_a_tuple_for_a_function_of_three_arguments_is_not_guessed() -> None:
    with pytest.raises(gc.UsageError, match="cannot tell which framework"):
        gc.check(lambda x, y, z: x, (randn(3), randn(3)))


# -- side arguments --------------------------------------------------------------------------


def test_side_arguments_reach_the_function_unchanged() -> None:
    mask, index = np.array([True, False, True]), torch.tensor([2, 0])
    seen: list[tuple[type, ...]] = []

    def fn(x: Any, mask: Any, index: Any, power: int, how: str) -> Any:
        seen.append((type(mask), type(power), type(how)))
        picked = x[torch.from_numpy(mask)] if how == "mask" else x[index]
        return (picked**power).sum()

    report = gc.check(fn, randn(3), mask, index, 3, "mask")
    assert report.verdict == "pass", report
    assert set(seen) == {(np.ndarray, int, str)}


def test_numpy_floats_left_out_of_wrt_stay_numpy_under_framework_torch() -> None:
    def fn(x: Any, weights: Any) -> Any:
        assert isinstance(weights, np.ndarray)
        return (x * torch.from_numpy(weights)).sum()

    x, weights = np.arange(3.0), np.array([0.5, 1.0, 2.0])
    assert gc.check(fn, x, weights, wrt=0, framework="torch").verdict == "pass"


# -- entries that are not finite -------------------------------------------------------------


def test_a_minus_inf_attention_mask_is_held_constant_and_named() -> None:
    scores = randn(2, 4)
    scores[0, 3] = -torch.inf
    scores[1, 0] = -torch.inf
    report = gc.check(lambda s: torch.softmax(s, -1), scores)
    assert report.verdict == "pass", report
    text = str(report)
    assert "input[0] has 2 entries that are not finite (-inf at (0, 3), -inf at (1, 0))" in text
    assert "held constant" in text
    assert "its 6 finite entries" in text


def test_safe_softmax_with_a_fully_masked_row_passes() -> None:
    scores = randn(2, 3)
    scores[1] = -torch.inf
    scores[0, 1] = -torch.inf
    report = gc.check(lambda s: torch._safe_softmax(s, -1), scores)
    assert report.verdict == "pass", report


def test_a_wrong_derivative_beside_infinite_entries_still_fails_and_is_located() -> None:
    x = randn(3)
    x[1] = torch.inf
    report = gc.check(lambda x: WrongExp.apply(x.clamp(max=5.0)), x)
    assert report.verdict == "fail", report
    assert "input[0][1]" not in str(report).split("note:")[0]
    assert "input[0][2]" in str(report)


# -- names, random numbers, compiled functions ----------------------------------------------


def test_a_custom_function_is_named_by_its_class() -> None:
    assert gc.check(MySoftplus.apply, randn(3)).name == "MySoftplus.apply"


def test_the_users_rng_state_is_restored_though_the_function_draws_random_numbers() -> None:
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    report = gc.check(lambda x: torch.nn.functional.dropout(x, 0.5, training=True), randn(4))
    assert report.verdict == "nondeterministic", report
    assert torch.equal(torch.get_rng_state(), before)


def test_the_users_rng_state_is_restored_when_random_code_raises_at_the_point() -> None:
    def fn(x: Any) -> Any:
        torch.rand(3)  # draws from the check's stream, then fails
        raise ValueError("not at this point")

    torch.manual_seed(99)
    before = torch.get_rng_state()
    with pytest.raises(ValueError, match="not at this point"):
        gc.check(fn, randn(2))
    assert torch.equal(torch.get_rng_state(), before)


def test_each_evaluation_of_random_code_draws_afresh_within_one_check() -> None:
    draws: list[float] = []

    def fn(x: Any) -> Any:
        noise = torch.rand(())
        draws.append(float(noise))
        return x * (1 + 1e-3 * noise)

    torch.manual_seed(5)
    report = gc.check(fn, randn(2))
    assert report.verdict == "nondeterministic", report
    assert len(set(draws)) == len(draws)  # one stream across the check, never replayed


def test_a_default_dtype_the_code_switches_is_put_back() -> None:
    def fn(x: Any) -> Any:
        torch.set_default_dtype(torch.float32)  # user code with a global side effect
        return x.sin()

    torch.set_default_dtype(torch.float64)
    try:
        report = gc.check(fn, randn(3))
        assert torch.get_default_dtype() == torch.float64
    finally:
        torch.set_default_dtype(torch.float32)
    assert report.verdict == "pass", report


def compile_quietly(fn: Any) -> Any:
    """torch.compile, whose first import warns about torch.jit (an error under -W error)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import torch._dynamo

        return torch.compile(fn)


def test_a_compiled_function_is_checked_through_the_uncompiled_one() -> None:
    compiled = compile_quietly(lambda x, y: (x.sin() * y).sum(-1))
    torch._dynamo.reset()
    report = gc.check(compiled, randn(2, 3), randn(2, 3, seed=1))
    assert report.verdict == "pass", report
    assert "checked through the uncompiled function" in str(report)
    assert not torch._dynamo.utils.counters["stats"]["unique_graphs"]


def test_a_compiled_module_is_checked_through_the_uncompiled_one() -> None:
    torch.manual_seed(0)
    model = compile_quietly(torch.nn.Linear(3, 2))
    report = gc.check(model, randn(2, 3, dtype=torch.float32))
    assert report.verdict == "pass", report
    assert "checked through the uncompiled module" in str(report)


# -- empty tensors ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_an_empty_input_and_an_empty_output_beside_others_are_noted_not_refused(
    mode: str,
) -> None:
    """OpInfo's addmm and cat samples with an empty tensor once crashed fast mode's probes."""
    x, empty = randn(3), randn(0, 2)
    report = gc.check(lambda x, e: (x.sin().sum() + e.sum(), e * 2), x, empty, mode=mode)
    assert report.verdict == "pass", report
    assert "input[1] is empty (shape (0, 2))" in str(report)


def test_a_wrong_derivative_beside_an_empty_input_still_fails() -> None:
    report = gc.check(lambda x, e: WrongExp.apply(x) + e.sum(), randn(3), randn(0))
    assert report.verdict == "fail", report


def test_a_module_gets_numpy_index_arrays_as_tensors() -> None:
    torch.manual_seed(0)
    model = torch.nn.EmbeddingBag(5, 3, mode="sum").double()
    report = gc.check(model, np.array([[0, 2], [4, 4]]), framework="torch")
    assert report.verdict == "pass", report


def test_a_hand_written_gradient_beside_infinite_entries_is_read_on_the_finite_ones() -> None:
    x = randn(4)
    x[2] = -torch.inf
    fn = lambda x: x.exp().sum()  # noqa: E731
    assert gc.check(fn, x, grad=lambda x: x.exp()).verdict == "pass"
    assert gc.check(fn, x, grad=lambda x: 1.01 * x.exp()).verdict == "fail"
