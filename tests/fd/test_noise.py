"""Measured round-off noise (ECnoise) against noise of known size."""

import numpy as np

from gradcheck._fd.noise import measure_noise
from gradcheck.adapters.numpy import NumpyAdapter


def _sigma(f, x, seed=0):
    fn = NumpyAdapter().bind(f, (x,), {}, None)
    return measure_noise(fn, np.random.default_rng(seed)).sigma


def test_large_offset_noise_is_half_an_ulp():
    """1e8 + sin(x): rounding to the ulp of 1e8 (1.5e-8) has sigma = ulp/sqrt(12) = 4.3e-9."""
    sigma = float(_sigma(lambda x: 1e8 + np.sum(np.sin(x)), np.array([0.3, 1.1]))[0])
    assert 1e-9 < sigma < 2e-8


def test_injected_noise_is_measured():
    rng = np.random.default_rng(5)
    table = {}

    def noisy(x):  # deterministic per point, like round-off, with sigma = 1e-6
        key = x.tobytes()
        if key not in table:
            table[key] = rng.normal(scale=1e-6)
        return float(np.sum(np.cos(x))) + table[key]

    sigma = float(_sigma(noisy, np.array([0.5, -0.2]))[0])
    assert 3e-7 < sigma < 3e-6


def test_exact_polynomial_has_no_noise():
    assert float(_sigma(lambda x: np.sum(x**2), np.array([1.0, 2.0]))[0]) < 1e-14


def test_values_near_overflow_do_not_overflow():
    with np.errstate(over="ignore"):
        sigma = _sigma(lambda x: np.sum(np.exp(x)), np.array([700.0, 695.0]))
    assert np.isfinite(sigma).all()
