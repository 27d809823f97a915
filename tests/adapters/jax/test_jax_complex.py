"""JAX complex numbers (issue #11.1) and functions differentiable in one mode only (#11.3).

Complex leaves are checked as ".real"/".imag" parts. The real-view VJP is first verified
against finite differences and against JAX's own complex vjp (ct = gr - i·gi, result
(Re r, -Im r)), then gc.check runs end to end on holomorphic functions, real losses of complex
parameters, complex outputs of real inputs and custom rules with and without the conjugate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy

import gradcheck as gc  # noqa: E402 - after the importorskip on purpose
from gradcheck.adapters.jax import JaxAdapter  # noqa: E402

A = 0.7 - 1.3j
Z = np.array([0.3 + 0.4j, -1.1 + 0.2j, 0.5 - 0.9j])
CONJUGATE_MISSING = "the conjugate is missing"


def _complex(values: np.ndarray = Z, dtype: str = "complex128") -> Any:
    with jax.enable_x64(True):
        return jnp.asarray(values, dtype=dtype)


def _real_jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """Central differences of a real map, column by column (f is linear or quadratic here)."""
    h = 1e-6
    cols = [(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(x.size)]
    return np.stack(cols, axis=1)


@pytest.mark.parametrize(
    "fn",
    [lambda z: A * z, lambda z: jnp.abs(z) ** 2, lambda z: jnp.sin(z) * z],
    ids=["a*z", "abs2", "sin(z)*z"],
)
def test_real_view_vjp_is_jax_convention_and_matches_differences(fn: Any) -> None:
    d = JaxAdapter().bind(fn, (_complex(),), {}, None)
    assert [leaf.name for leaf in d.inputs] == ["input[0].real", "input[0].imag"]
    complex_out = d.m == 2 * Z.size
    assert [leaf.name for leaf in d.outputs] == (
        ["output.real", "output.imag"] if complex_out else ["output"]
    )
    numeric = _real_jacobian(d.value, d.x0)
    rng = np.random.default_rng(0)
    g = rng.standard_normal(d.m)
    np.testing.assert_allclose(d.vjp(d.x0, g), numeric.T @ g, atol=1e-8)
    v = rng.standard_normal(d.n)
    np.testing.assert_allclose(d.jvp(d.x0, v), numeric @ v, atol=1e-8)
    # JAX's own complex vjp, with the conversion of "Note: complex numbers in JAX"
    with jax.enable_x64(True):
        out, pullback = jax.vjp(fn, _complex())
        ct = g[: out.size] - 1j * g[out.size :] if complex_out else g
        (r,) = pullback(jnp.asarray(ct, dtype=out.dtype))
    np.testing.assert_allclose(d.vjp(d.x0, g), np.concatenate([r.real, -r.imag]), atol=1e-12)
    with jax.enable_x64(True):
        tangent = jax.jvp(fn, (_complex(),), (_complex(v[:3] + 1j * v[3:]),))[1]
    expected = np.concatenate([np.real(tangent), np.imag(tangent)] if complex_out else [tangent])
    np.testing.assert_allclose(d.jvp(d.x0, v), expected.astype(np.float64), atol=1e-12)


def test_holomorphic_function_passes_and_agrees_with_holomorphic_grad() -> None:
    fn = lambda z: jnp.sin(z) * z  # noqa: E731
    report = gc.check(fn, _complex(dtype="complex64"))
    assert report.passed, report
    assert any("JAX's convention" in note for note in report.notes)
    assert any(c.kind == "jvp" for c in report.checks)
    d = JaxAdapter().bind(fn, (_complex(),), {}, None)
    with jax.enable_x64(True):
        derivative = jax.vmap(jax.grad(lambda z: fn(z), holomorphic=True))(_complex())
    alpha, beta = np.real(derivative), np.imag(derivative)
    # the real Jacobian of a holomorphic f is [[α, -β], [β, α]] per entry
    e0 = np.zeros(d.n)
    e0[0] = 1.0
    np.testing.assert_allclose(d.jvp(d.x0, e0)[[0, 3]], [alpha[0], beta[0]], rtol=1e-12)


def test_real_loss_of_complex_parameters_passes_to_order_two() -> None:
    params = {"w": _complex(), "b": _complex(np.array([0.2, -0.1]))}
    x = np.array([0.5, -1.0, 2.0])

    def loss(p: Any) -> Any:
        pred = jnp.sum(p["w"] * x) + p["b"]
        return jnp.sum(jnp.abs(pred) ** 2) + jnp.real(jnp.sum(p["w"] ** 2))

    report = gc.check(loss, params, order=2)
    assert report.passed, report
    assert len({c.kind for c in report.checks}) >= 3, report  # first and second order ran


def test_complex_output_of_a_real_input_passes() -> None:
    with jax.enable_x64(True):
        x = jnp.asarray([0.3, -0.8])
    report = gc.check(lambda t: jnp.exp(1j * t) * t, x, mode="fast")
    assert report.passed, report


def _mul(conjugate: bool) -> Callable[[Any], Any]:
    @jax.custom_vjp
    def mul(z: Any) -> Any:
        return A * z

    def forward(z: Any) -> tuple[Any, None]:
        return A * z, None

    def backward(_: None, ct: Any) -> tuple[Any]:
        # JAX's convention is ct·f'(z); ct·conj(f'(z)) is torch's, and wrong here
        return (ct * (np.conj(A) if conjugate else A),)

    mul.defvjp(forward, backward)
    return mul  # type: ignore[no-any-return]


def test_custom_vjp_in_jax_convention_passes() -> None:
    report = gc.check(_mul(conjugate=False), _complex())
    assert report.passed, report


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_custom_vjp_with_a_spurious_conjugate_fails_with_that_cause(mode: str) -> None:
    report = gc.check(_mul(conjugate=True), _complex(), mode=mode)
    assert report.verdict == "fail", report
    if mode == "full":
        assert CONJUGATE_MISSING in str(report), report


def test_user_supplied_complex_gradient_uses_the_same_convention() -> None:
    loss = lambda z: jnp.sum(jnp.abs(z) ** 2)  # noqa: E731
    right = gc.check(loss, _complex(), grad=lambda z: 2 * jnp.conj(z))  # JAX's grad
    assert right.passed, right
    wrong = gc.check(loss, _complex(), grad=lambda z: 2 * z)  # the conjugate forgotten
    assert wrong.verdict == "fail", wrong


# -- one mode only (#11.3) ------------------------------------------------------------------


def _while(scale: float) -> Callable[[Any], Any]:
    def f(x: Any) -> Any:
        def body(carry: Any) -> Any:
            i, y = carry
            return i + 1, jnp.sin(y) * scale

        return jax.lax.while_loop(lambda c: c[0] < 3, body, (0, x))[1]

    return f


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_while_loop_is_checked_in_forward_mode_with_a_note(mode: str) -> None:
    x = jnp.asarray([0.3, 0.5], dtype=jnp.float32)  # float32: the dtype audit is attempted
    report = gc.check(_while(1.1), x, mode=mode)
    assert report.passed, report
    assert {c.kind for c in report.checks} >= {"jvp"}
    assert "vjp" not in {c.kind for c in report.checks}
    assert any("reverse mode is not defined" in n and "while_loop" in n for n in report.notes)
    assert not any("dtype audit" in n for n in report.notes), report  # said once is enough


def test_while_loop_with_a_wrong_forward_rule_fails() -> None:
    @jax.custom_jvp
    def wrong_sin(y: Any) -> Any:
        return jnp.sin(y)

    wrong_sin.defjvp(lambda primals, tangents: (jnp.sin(primals[0]), 1.5 * tangents[0]))

    def f(x: Any) -> Any:
        body = lambda c: (c[0] + 1, wrong_sin(c[1]))  # noqa: E731
        return jax.lax.while_loop(lambda c: c[0] < 2, body, (0, x))[1]

    report = gc.check(f, _complex(np.array([0.3, 0.5])).real)
    assert report.verdict == "fail", report
