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


CANCELLED = 45554816.65996992
TANH_POINT = np.array([-2.28038419, -2.7965409, -2.72195944, -1.60942524])


def cancelled(x):
    """(c + Σ tanh x) - c: every value rounded to a multiple of ulp(c) = 7.5e-9."""
    return (CANCELLED + np.sum(np.tanh(x))) - CANCELLED


def test_rounding_in_step_with_the_spacing_is_measured_at_a_second_look():
    """At the spacing of 2^-20 this draw moves by exactly 9 quanta per point: a straight line
    with no noise at all (Note: Aligned rounding); at any step a ladder takes, the rounding
    is uniform over one quantum, σ = 7.5e-9/sqrt(12) = 2.2e-9."""
    fn = NumpyAdapter().bind(cancelled, (TANH_POINT,), {}, None)
    noise = measure_noise(fn, np.random.default_rng(0))
    assert 1e-9 < float(noise.sigma[0]) < 5e-9
    assert noise.hidden  # an intermediate's rounding, not f's own precision


def test_a_linear_function_still_reads_only_its_own_rounding():
    assert float(_sigma(lambda x: 2.0 * np.sum(x) + 1.0, np.array([1.0, 2.0]))[0]) < 1e-14
