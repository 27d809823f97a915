"""Smooth test functions with known gradients, in the ill-scaled regimes that break checkers.

Each family draws a function, its exact gradient and a point from a random generator. The
families cover what NUMERICS.md lists: inputs from 1e-6 to 1e6, outputs from 1e-8 to 1e15,
large constant offsets, exp near overflow, log near 0⁺, length scales far from |x|, coupled
coordinates, and code that computes in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Fn = Callable[[np.ndarray], object]


@dataclass(frozen=True)
class Case:
    family: str
    f: Fn
    grad: Fn
    x: np.ndarray


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, size: int | None = None) -> object:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def _signs(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice([-1.0, 1.0], n)


def scaled_inputs(rng: np.random.Generator, n: int) -> Case:
    """sin(x/L)·L: the length scale follows |x| from 1e-6 to 1e6."""
    scale = _log_uniform(rng, 1e-6, 1e6)
    x = rng.uniform(0.2, 3.0, n) * scale * _signs(rng, n)
    return Case(
        "inputs 1e-6..1e6",
        lambda x: np.sum(np.sin(x / scale)) * scale,
        lambda x: np.cos(x / scale),
        x,
    )


def scaled_outputs(rng: np.random.Generator, n: int) -> Case:
    """s·Σ tanh(x)² with s from 1e-8 to 1e15."""
    s = _log_uniform(rng, 1e-8, 1e15)
    x = rng.uniform(-2, 2, n)
    return Case(
        "outputs 1e-8..1e15",
        lambda x: s * np.sum(np.tanh(x) ** 2),
        lambda x: s * 2 * np.tanh(x) / np.cosh(x) ** 2,
        x,
    )


def offset(rng: np.random.Generator, n: int) -> Case:
    """c + Σ sin x with c up to 1e8: round-off sets the accuracy floor."""
    c = _log_uniform(rng, 1e2, 1e8)
    x = rng.uniform(-3, 3, n)
    return Case("offset 1e2..1e8", lambda x: c + np.sum(np.sin(x)), np.cos, x)


def exp_overflow(rng: np.random.Generator, n: int) -> Case:
    """Σ exp(x) a few units below overflow (exp(709.78) is the largest float64)."""
    x = rng.uniform(690, 705, n)
    return Case(
        "exp near overflow", lambda x: np.sum(np.exp(x)) * 1e-10, lambda x: np.exp(x) * 1e-10, x
    )


def log_near_zero(rng: np.random.Generator, n: int) -> Case:
    """Σ log x at x from 1e-8 to 1e-3: the step must stay far below |x|."""
    x = _log_uniform(rng, 1e-8, 1e-3, n)
    return Case("log near 0+", lambda x: np.sum(np.log(x)), lambda x: 1 / x, x)


def fast_oscillation(rng: np.random.Generator, n: int) -> Case:
    """sin(1e5·x) at x near 1e-5: the length scale is 1e-5, not |x| = 1e-5 nor 1."""
    x = rng.uniform(0.5e-5, 2e-5, n)
    return Case("sin(1e5 x)", lambda x: np.sum(np.sin(1e5 * x)), lambda x: 1e5 * np.cos(1e5 * x), x)


def slow_variation(rng: np.random.Generator, n: int) -> Case:
    """cos(x/1e5) at x near 1e5: needs steps far above 1e-6."""
    x = rng.uniform(0.5e5, 2e5, n)
    return Case(
        "cos(x/1e5)", lambda x: np.sum(np.cos(x / 1e5)), lambda x: -np.sin(x / 1e5) / 1e5, x
    )


def tiny_tanh(rng: np.random.Generator, n: int) -> Case:
    """1e-8·Σ tanh(x)²: invisible to checkers with an absolute tolerance."""
    x = rng.uniform(-2, 2, n)
    return Case(
        "1e-8 tanh^2",
        lambda x: 1e-8 * np.sum(np.tanh(x) ** 2),
        lambda x: 2e-8 * np.tanh(x) / np.cosh(x) ** 2,
        x,
    )


def coupled(rng: np.random.Generator, n: int) -> Case:
    """Σ tanh(Wx + b)²: every coordinate reaches every term."""
    w = rng.standard_normal((n + 1, n))
    b = rng.standard_normal(n + 1)
    x = rng.standard_normal(n)

    def grad(x: np.ndarray) -> np.ndarray:
        t = np.tanh(w @ x + b)
        return w.T @ (2 * t * (1 - t**2))

    return Case("tanh(Wx+b)^2", lambda x: np.sum(np.tanh(w @ x + b) ** 2), grad, x)


def rational(rng: np.random.Generator, n: int) -> Case:
    """Σ 1/(1 + (x/L)²), a pole at ±iL: the Taylor radius is L."""
    length = _log_uniform(rng, 1e-3, 1e3)
    x = rng.uniform(-2, 2, n) * length
    return Case(
        "rational",
        lambda x: np.sum(1 / (1 + (x / length) ** 2)),
        lambda x: -2 * x / length**2 / (1 + (x / length) ** 2) ** 2,
        x,
    )


def data_loss(rng: np.random.Generator, n: int) -> Case:
    """Σ_k (tanh(a_k·w) - y_k)² over 1000 samples: round-off accumulates across the sum."""
    a = rng.standard_normal((1000, n))
    y = rng.standard_normal(1000) * 10 ** rng.uniform(0, 4)
    w = rng.standard_normal(n) * 0.3

    def grad(w: np.ndarray) -> np.ndarray:
        t = np.tanh(a @ w)
        return a.T @ (2 * (t - y) * (1 - t**2))

    return Case("data loss", lambda w: np.sum((np.tanh(a @ w) - y) ** 2), grad, w)


def float32_code(rng: np.random.Generator, n: int) -> Case:
    """A function and gradient that compute in float32 internally."""
    x = rng.uniform(-2, 2, n)

    def f(x: np.ndarray) -> np.floating:
        return np.sum(np.sin(x.astype(np.float32)) * np.float32(3))

    return Case("float32 code", f, lambda x: np.cos(x.astype(np.float32)) * np.float32(3), x)


SMOOTH = (
    scaled_inputs,
    scaled_outputs,
    offset,
    exp_overflow,
    log_near_zero,
    fast_oscillation,
    slow_variation,
    tiny_tanh,
    coupled,
    rational,
    data_loss,
)
ALL = (*SMOOTH, float32_code)


def perturb(grad: Fn, index: int, delta: float) -> Fn:
    """grad with entry `index` multiplied by 1 + delta: the injected bug."""

    def wrong(x: np.ndarray) -> np.ndarray:
        g = np.array(grad(x), dtype=np.float64)
        g[index] *= 1 + delta
        return g

    return wrong


def target_entry(case: Case) -> int:
    """The entry to corrupt: the largest one, so a relative error is meaningful."""
    return int(np.argmax(np.abs(np.asarray(case.grad(case.x), dtype=np.float64))))


# Functions that are not smooth everywhere, checked where they are differentiable (or at their
# kinks and jumps): the classes of false verdict found on real operator databases.


def staircase(rng: np.random.Generator, n: int) -> Case:
    """Σ floor/round/trunc(a·x) + sin x at points 0.05–0.45 of a stair away from its jumps:
    exactly constant steps beside a smooth part (PyTorch OpInfo: floor, round, frac)."""
    a = rng.choice([1.0, 3.0, 0.25])
    op = [np.floor, np.round, np.trunc][int(rng.integers(3))]
    stairs = rng.integers(-300, 300, n) + rng.choice([-1.0, 1.0], n) * rng.uniform(0.05, 0.45, n)
    stairs = np.where(np.abs(stairs) < 0.5, stairs + 1.0, stairs)  # keep trunc's 0 away
    x = (stairs + 0.5 * (op is np.floor or op is np.trunc)) / a
    return Case(
        "staircase", lambda x: np.sum(op(a * x)) + np.sum(np.sin(x)), lambda x: np.cos(x), x
    )


def sawtooth(rng: np.random.Generator, n: int) -> Case:
    """Σ fmod(x, p): slope 1 between jumps every p, at 0.1–0.9 of a period (JAX lax.rem)."""
    p = rng.choice([1.0, 0.5, 2.0])
    x = (rng.integers(1, 2000, n) + rng.uniform(0.1, 0.9, n)) * p
    return Case("sawtooth", lambda x: np.sum(np.fmod(x, p)), lambda x: np.ones_like(x), x)


def near_kink(rng: np.random.Generator, n: int) -> Case:
    """Σ relu(x)² + Σ |x - c|·x with a kink 1e-7–1e-3 (relative) from the point."""
    x = rng.uniform(0.5, 2.0, n) * rng.choice([-1.0, 1.0], n)
    c = x * (1 + rng.choice([-1.0, 1.0], n) * np.exp(rng.uniform(np.log(1e-7), np.log(1e-3), n)))
    return Case(
        "near kink",
        lambda x: np.sum(np.maximum(x, 0) ** 2) + np.sum(np.abs(x - c) * x),
        lambda x: 2 * np.maximum(x, 0) + np.sign(x - c) * x + np.abs(x - c),
        x,
    )


def domain_edge(rng: np.random.Generator, n: int) -> Case:
    """Σ log(x) that raises for x <= 0, at x from 1e-6 to 1e-2: larger steps leave the domain."""
    x = np.exp(rng.uniform(np.log(1e-6), np.log(1e-2), n))

    def f(x: np.ndarray) -> object:
        if (x <= 0).any():
            raise ValueError("math domain error: log of a non-positive number")
        return np.sum(np.log(x))

    return Case("domain edge", f, lambda x: 1 / x, x)


NONSMOOTH = (staircase, sawtooth, near_kink, domain_edge)


def cancellation(rng: np.random.Generator, n: int) -> Case:
    """(c + Σ tanh x) - c with c from 1e4 to 1e10: every value is rounded to ulp(c), up to
    1e7 times eps·|f|, a fine staircase where the check's steps see round-off (a difference
    of large sums, a variance as E[x²] - E[x]²)."""
    c = _log_uniform(rng, 1e4, 1e10)
    x = rng.uniform(-3, 3, n)
    return Case(
        "cancellation", lambda x: (c + np.sum(np.tanh(x))) - c, lambda x: 1 - np.tanh(x) ** 2, x
    )
