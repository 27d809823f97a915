"""A JAX `custom_vjp` rule, tested with the `gradcheck` fixture and hypothesis strategies.

Run with ``pytest examples/test_jax_custom_vjp.py``. gradcheck evaluates JAX functions in
float64 with x64 switched on only for the check, so the float32 arrays the strategies make
without ``jax_enable_x64`` are checked against float64 finite differences all the same.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import gradcheck.strategies as gst

pytest.importorskip("jax")
import jax  # after the skip: each example needs only its framework
import jax.numpy as jnp

# One fixture instance serves every example of a test (it is function-scoped); that is safe
# because the checker keeps no per-example state, hence the suppressed health check. Each JAX
# check traces and compiles its function, so a few examples go a long way.
SHARED_FIXTURE = settings(
    max_examples=5, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@jax.custom_vjp
def safe_norm(x: Any) -> Any:
    """The Euclidean norm, with a gradient of 0 instead of NaN at x = 0."""
    return jnp.sqrt(jnp.sum(x**2))


def _safe_norm_fwd(x: Any) -> tuple[Any, tuple[Any, Any]]:
    norm = safe_norm(x)
    return norm, (x, norm)


def _safe_norm_bwd(residuals: tuple[Any, Any], g: Any) -> tuple[Any]:
    x, norm = residuals
    return (g * jnp.where(norm > 0, x / jnp.where(norm > 0, norm, 1.0), 0.0),)


safe_norm.defvjp(_safe_norm_fwd, _safe_norm_bwd)


@SHARED_FIXTURE
@given(x=gst.arrays((4,), framework="jax", kinks=(0.0,)))  # the norm's kink is at x = 0
def test_custom_vjp(gradcheck: Any, x: Any) -> None:
    gradcheck(safe_norm, x)


@jax.jit
def scaled_norm(x: Any) -> Any:
    return safe_norm(x) * jnp.sum(jnp.sin(x))


@SHARED_FIXTURE
@given(x=gst.arrays((3,), framework="jax", kinks=(0.0,)))
def test_under_jit(gradcheck: Any, x: Any) -> None:
    gradcheck(scaled_norm, x)


def test_gradient_at_zero_is_finite() -> None:
    assert float(jax.grad(safe_norm)(jnp.zeros(3))[0]) == 0.0


def log_det(a: Any) -> Any:
    return jnp.linalg.slogdet(a)[1]


@pytest.mark.gradcheck(mode="fast")  # a well-conditioned SPD matrix: log|A| is smooth there
@settings(SHARED_FIXTURE, max_examples=3)  # linear algebra takes JAX a while to compile
@given(a=gst.spd_matrices(4, condition=50.0, framework="jax"))
def test_log_determinant_of_spd_matrices(gradcheck: Any, a: Any) -> None:
    gradcheck(log_det, a)
