"""The least-squares derivative that averages round-off away (Note: Averaged round-off)."""

import sys

import numpy as np
import pytest

from gradcheck._fd.average import averaged
from gradcheck._fd.ladder import Coordinates
from gradcheck.adapters.numpy import NumpyAdapter


def _averaged(f, x, step):
    fn = NumpyAdapter().bind(f, (x,), {}, None)
    return averaged(fn, Coordinates(np.arange(x.size), x.size), np.full(x.size, step))


@pytest.mark.parametrize("seed", range(5))
def test_a_large_offset_is_averaged_to_an_honest_tight_bound(seed):
    """1e8 + Σ sin x: every value is rounded to a multiple of 1.5e-8; the ladders can vouch
    for 2e-7 to 5e-7 of a derivative of 1, the average of 64 samples for about 5e-8."""
    x = np.random.default_rng(seed).uniform(-3, 3, 4)
    found = _averaged(lambda x: 1e8 + np.sum(np.sin(x)), x, 0.125)
    assert found.evaluations == 4 * 64
    error = found.error[:, 0]
    assert (np.abs(found.value[:, 0] - np.cos(x)) <= error).all()
    assert (error < 1e-7).all()


def test_a_window_beyond_the_length_scale_is_not_used():
    """sin(20 x) over a window of ±0.5: ten times its length scale, so the fit is biased and
    its inner half disagrees."""
    x = np.array([0.3, 1.1])
    found = _averaged(lambda x: 1e8 + np.sum(np.sin(20 * x)), x, 0.125)
    assert np.isinf(found.error).all()


def test_samples_that_never_change_prove_nothing():
    """1e8 + 1e-9·Σx does not change by one ulp (1.5e-8) across the window: a fit of zeros
    claims a derivative of 0 ± 0 where the truth is 1e-9."""
    found = _averaged(lambda x: 1e8 + 1e-9 * np.sum(x), np.array([0.5, 1.0]), 0.125)
    assert np.isinf(found.error).all()


def test_many_directions_are_averaged_in_chunks_with_the_same_result(monkeypatch):
    """The points of 64 samples a direction stay under the engine's memory bound."""
    x = np.random.default_rng(3).uniform(-3, 3, 6)
    whole = _averaged(lambda x: 1e8 + np.sum(np.sin(x)), x, 0.125)
    sizes = []
    fn = NumpyAdapter().bind(lambda x: 1e8 + np.sum(np.sin(x)), (x,), {}, None)
    original = fn.values
    monkeypatch.setattr(fn, "values", lambda xs: sizes.append(len(xs)) or original(xs))
    module = sys.modules["gradcheck._fd.estimate"]  # the package's `estimate` is a function
    monkeypatch.setattr(module, "MEMORY_ENTRIES", 2 * 64 * (fn.m + fn.n))
    chunked = averaged(fn, Coordinates(np.arange(6), 6), np.full(6, 0.125))
    assert sizes == [128, 128, 128]
    np.testing.assert_array_equal(chunked.value, whole.value)
    np.testing.assert_array_equal(chunked.error, whole.error)
