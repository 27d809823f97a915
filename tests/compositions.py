"""Random compositions of smooth elementary functions, with exact chain-rule gradients.

f(x) = offset + scale·(Σ_i w_i·H(a_i·x_i + b_i) + κ·G(Σ_i c_i·x_i)), where H and G are chains
of up to three elementary functions. Input magnitudes, output scale and offset are drawn
log-uniformly over the ranges the acceptance criteria name (|x| 1e-6..1e6, |f| 1e-8..1e15,
offsets up to 1e8 times the rest).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

Unary = tuple[str, Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]

OPS: tuple[Unary, ...] = (
    ("sin", np.sin, np.cos),
    ("tanh", np.tanh, lambda t: 1 - np.tanh(t) ** 2),
    ("atan", np.arctan, lambda t: 1 / (1 + t**2)),
    ("softplus", lambda t: np.logaddexp(0, t), expit),
    ("hypot1", lambda t: np.sqrt(1 + t**2), lambda t: t / np.sqrt(1 + t**2)),
    ("square", np.square, lambda t: 2 * t),
    ("gauss", lambda t: np.exp(-(t**2)), lambda t: -2 * t * np.exp(-(t**2))),
    ("cube", lambda t: t**3, lambda t: 3 * t**2),
    ("log1p_sq", lambda t: np.log1p(t**2), lambda t: 2 * t / (1 + t**2)),
)


def chain(
    ops: Sequence[Unary],
) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """The composition ops[-1](…ops[0](t)) and its derivative by the chain rule."""

    def value(t: np.ndarray) -> np.ndarray:
        for _, f, _ in ops:
            t = f(t)
        return t

    def slope(t: np.ndarray) -> np.ndarray:
        total = np.ones_like(t)
        for _, f, df in ops:
            total = total * df(t)
            t = f(t)
        return total

    return value, slope


@dataclass(frozen=True)
class Composition:
    name: str
    f: Callable[[np.ndarray], np.floating]
    grad: Callable[[np.ndarray], np.ndarray]
    x: np.ndarray
    offset_ratio: float  # |offset| / |scale|: how much round-off the offset adds


def draw(rng: np.random.Generator, n: int = 4) -> Composition:
    """One random composition and a point."""
    h_ops = [OPS[i] for i in rng.integers(0, len(OPS), rng.integers(1, 4))]
    g_ops = [OPS[i] for i in rng.integers(0, len(OPS), rng.integers(1, 4))]
    h, dh = chain(h_ops)
    g, dg = chain(g_ops)
    magnitude = 10 ** rng.uniform(-6, 6)
    x = rng.uniform(0.2, 2.0, n) * magnitude * rng.choice([-1.0, 1.0], n)
    a = rng.uniform(0.3, 1.5, n) / magnitude  # keeps the arguments of H near unit size
    b = rng.uniform(-1, 1, n)
    c = rng.standard_normal(n) / magnitude / np.sqrt(n)
    w = rng.standard_normal(n)
    kappa = rng.choice([0.0, 1.0])
    scale = 10 ** rng.uniform(-8, 15) / max(magnitude, 1.0) ** 0
    offset_ratio = float(rng.choice([0.0, 10 ** rng.uniform(0, 8)]))
    offset = offset_ratio * scale

    def f(x: np.ndarray) -> np.floating:
        return offset + scale * (np.sum(w * h(a * x + b)) + kappa * g(np.sum(c * x)))

    def grad(x: np.ndarray) -> np.ndarray:
        return scale * (w * a * dh(a * x + b) + kappa * c * dg(np.sum(c * x)))

    name = (
        "H="
        + "∘".join(o[0] for o in reversed(h_ops))
        + " G="
        + "∘".join(o[0] for o in reversed(g_ops))
    )
    return Composition(name, f, grad, x, offset_ratio)
