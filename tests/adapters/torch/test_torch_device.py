"""Tensors are checked on their own device: every test runs on the CPU, and on CUDA where a
device is present (skipped cleanly without one)."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

import gradcheck as gc  # noqa: E402
from gradcheck.adapters.torch import TorchAdapter  # noqa: E402

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ),
]


@pytest.mark.parametrize("device", DEVICES)
def test_the_function_is_evaluated_on_its_device_in_float64(device: str) -> None:
    seen: list[Any] = []

    def fn(x: Any) -> Any:
        seen.append((x.device.type, x.dtype))
        return (x.sin() * x).sum(-1)

    report = gc.check(fn, torch.randn(3, 4, device=device))
    assert report.verdict == "pass", report
    # float64 copies for the check, the user's float32 for the dtype audit: all on the device
    assert set(seen) == {(device, torch.float64), (device, torch.float32)}


@pytest.mark.parametrize("device", DEVICES)
def test_complex_and_masked_inputs_stay_on_their_device(device: str) -> None:
    z = torch.randn(3, dtype=torch.complex128, device=device)
    s = torch.randn(2, 3, dtype=torch.float64, device=device)
    s[0, 1] = -torch.inf

    def fn(z: Any, s: Any) -> Any:
        return (z.abs() ** 2).sum() + s.softmax(-1)[0, 2]

    f = TorchAdapter().bind(fn, [z, s], {}, None)
    assert [p.device.type for p in f.native_inputs(f.x0)] == [device, device]
    assert gc.check(fn, z, s).verdict == "pass"


@pytest.mark.parametrize("device", DEVICES)
def test_a_wrong_backward_on_its_device_fails(device: str) -> None:
    class Twice(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return x * 2

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            return grad * 3

    assert gc.check(Twice.apply, torch.randn(3, device=device)).verdict == "fail"


@pytest.mark.parametrize("device", DEVICES)
def test_the_users_generator_on_the_device_is_restored_and_randomness_is_seen(
    device: str,
) -> None:
    """Dropout on the device draws from that device's generator: the user's state is put back
    after the check, and the fresh draw at every evaluation shows as nondeterminism."""
    x = torch.randn(16, device=device)
    state = torch.get_rng_state() if device == "cpu" else torch.cuda.get_rng_state()
    report = gc.check(lambda t: torch.nn.functional.dropout(t, 0.5).sum(), x)
    assert report.verdict == "nondeterministic", report
    after = torch.get_rng_state() if device == "cpu" else torch.cuda.get_rng_state()
    assert torch.equal(state, after)
