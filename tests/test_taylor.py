"""The Taylor-remainder test: slope 2 for a right derivative, 1 for a wrong one, no tolerance."""

import numpy as np
import pytest

from gradcheck._taylor import remainder_test
from gradcheck.adapters.numpy import NumpyAdapter

X = np.array([0.3, -1.2, 2.0])


def _bound(f, x):
    fn = NumpyAdapter().bind(f, (x,), {}, None)
    return fn, fn.value(fn.x0)


@pytest.mark.parametrize("i", range(3))
def test_right_slope_falls_as_h_squared(i):
    fn, f0 = _bound(lambda x: np.sum(np.sin(x) ** 2), X)
    test = remainder_test(fn, f0, np.eye(3)[i], np.ones(1), float(np.sin(2 * X[i])))
    assert test.verdict == "consistent"
    assert test.slope == pytest.approx(2.0, abs=0.15)
    assert test.resolution < 1e-5


@pytest.mark.parametrize("delta", [1e-5, 1e-3, -0.5])
def test_wrong_slope_falls_as_h(delta):
    fn, f0 = _bound(lambda x: np.sum(np.sin(x) ** 2), X)
    test = remainder_test(fn, f0, np.eye(3)[1], np.ones(1), float(np.sin(2 * X[1])) * (1 + delta))
    assert test.verdict == "inconsistent"
    assert test.slope == pytest.approx(1.0, abs=0.1)


def test_linear_function_is_undecided_not_wrong():
    """No curvature: the remainder is pure round-off, and the test says it cannot tell."""
    fn, f0 = _bound(lambda x: np.sum(3 * x), X)
    assert remainder_test(fn, f0, np.eye(3)[0], np.ones(1), 3.0).verdict == "undecided"
