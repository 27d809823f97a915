"""Complex inputs and outputs: real and imaginary parts as leaves, torch's conjugate Wirtinger
convention checked the way torch.autograd.gradcheck checks it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradcheck as gc  # noqa: E402
from gradcheck.adapters.torch import TorchAdapter  # noqa: E402

A = complex(0.7, -1.3)


def bind(fn: Any, *inputs: Any, wrt: Any = None) -> Any:
    return TorchAdapter().bind(fn, inputs, {}, wrt)


def cplx(*shape: int, seed: int = 0, dtype: Any = torch.complex128) -> Any:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def numeric_jacobian(f: Any, h: float = 1e-6) -> np.ndarray:
    """Central differences of the flat map: the reference the real-view derivatives must meet."""
    columns = []
    for j in range(f.n):
        e = np.zeros(f.n)
        e[j] = h
        columns.append((f.value(f.x0 + e) - f.value(f.x0 - e)) / (2 * h))
    return np.stack(columns, axis=1)


def scale_function(conjugate: bool) -> Any:
    """z -> A·z with a hand-written backward; without the conjugate it is wrong."""

    class Scale(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, z: Any) -> Any:
            return z * A

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            return grad * (np.conj(A) if conjugate else A)

    return Scale


@pytest.mark.parametrize(
    "fn",
    [lambda z: A * z, lambda z: (z * z.conj()).real, lambda z: z.abs() ** 2 + z.conj()],
    ids=["holomorphic", "abs2-real", "non-holomorphic-complex"],
)
def test_real_view_derivatives_equal_differences(fn: Any) -> None:
    f = bind(fn, cplx(3))
    assert [leaf.name for leaf in f.inputs] == ["input[0].real", "input[0].imag"]
    reference = numeric_jacobian(f)
    by_vjp = np.stack([f.vjp(f.x0, e) for e in np.eye(f.m)])
    by_jvp = np.stack([f.jvp(f.x0, e) for e in np.eye(f.n)]).T
    np.testing.assert_allclose(by_vjp, reference, atol=1e-8)
    np.testing.assert_allclose(by_jvp, reference, atol=1e-8)
    np.testing.assert_allclose(f.vjps(f.x0, np.eye(f.m)), reference, atol=1e-8)


def test_complex_outputs_are_named_by_part_and_values_rebuild_the_tensor() -> None:
    z = cplx(2, 2)
    f = bind(lambda z: z.exp(), z)
    assert [leaf.name for leaf in f.outputs] == ["output.real", "output.imag"]
    assert f.outputs[0].dtype == "complex128"
    expected = z.exp()
    np.testing.assert_allclose(
        f.value(f.x0), np.concatenate([expected.real.ravel(), expected.imag.ravel()])
    )
    assert any("conjugate Wirtinger" in note for note in f.notes)
    assert any("complex output checked" in note for note in f.notes)


@pytest.mark.parametrize(
    ("fn", "inputs"),
    [
        (lambda z: torch.sin(z) * z, (cplx(4),)),
        (
            lambda w, x: ((w @ x.to(w.dtype)).abs() ** 2).sum(),
            (cplx(2, 3), torch.randn(3, dtype=torch.float64)),
        ),
        (lambda x: torch.fft.fft(x), (torch.randn(5, dtype=torch.float64),)),
        (lambda z: torch.fft.ifft(z).real.sum() + torch.fft.fft(z)[1].imag, (cplx(4),)),
        (torch.polar, (torch.rand(3, dtype=torch.float64) + 0.5, torch.randn(3).double())),
    ],
    ids=["holomorphic", "real-loss-of-complex-params", "fft", "fft-ifft", "polar"],
)
def test_complex_functions_pass(fn: Any, inputs: Any) -> None:
    report = gc.check(fn, *inputs)
    assert report.verdict == "pass", report


def test_complex_custom_function_passes_with_its_conjugate() -> None:
    report = gc.check(scale_function(conjugate=True).apply, cplx(3))
    assert report.verdict == "pass", report


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_a_forgotten_conjugate_fails_and_is_named(mode: str) -> None:
    report = gc.check(scale_function(conjugate=False).apply, cplx(3), mode=mode)
    assert report.verdict == "fail", report
    if mode == "full":
        assert "conjugate is missing" in str(report), report


def test_complex64_inputs_are_checked_on_complex128_copies() -> None:
    z = cplx(3, dtype=torch.complex64)
    f = bind(lambda z: (z * z).sum(), z)
    assert f.inputs[0].dtype == "complex64"
    assert gc.check(lambda z: (z * z).sum(), z).verdict == "pass"
    assert z.dtype == torch.complex64


@pytest.mark.parametrize(
    ("grad", "verdict"), [(lambda z: 2 * z, "pass"), (lambda z: 2 * z.conj(), "fail")]
)
def test_a_hand_written_gradient_of_a_complex_input_in_torchs_convention(
    grad: Any, verdict: str
) -> None:
    """torch's gradient of a real loss L(z) is ∂L/∂re + i·∂L/∂im: 2z for |z|²."""
    report = gc.check(lambda z: (z.abs() ** 2).sum(), cplx(3), grad=grad)
    assert report.verdict == verdict, report
