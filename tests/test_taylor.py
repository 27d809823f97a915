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


KINKED_AT = np.array([2.71041479, -0.08302671, -2.67934358])
KINKS = KINKED_AT + np.array([0.08759275, 0.00103425, 0.00743])


def kinked(x):
    """4e9 + Σ|x - c| + Σ sin x, with a kink 0.001 along x[1]: the offset's round-off (4.8e-7)
    hides the remainder at every step below the kink."""
    return 3991655295.8423347 + np.sum(np.abs(x - KINKS)) + np.sum(np.sin(x))


@pytest.mark.parametrize("delta", [0.0, 0.5])
def test_a_kink_within_the_steps_is_not_a_wrong_slope(delta):
    """Past the kink the remainder falls like h on its side only (Note: One-sided
    remainders); a wrong slope leaves it on both sides."""
    fn, f0 = _bound(kinked, KINKED_AT)
    exact = float(np.sign(KINKED_AT[1] - KINKS[1]) + np.cos(KINKED_AT[1]))
    test = remainder_test(fn, f0, np.eye(3)[1], np.ones(1), exact + delta)
    assert test.verdict == ("inconsistent" if delta else "undecided"), test
    assert test.one_sided == (not delta)


def test_steps_where_f_did_not_move_say_nothing_about_the_slope():
    """(c + Σ tanh x) - c with c = 1.25e10 is rounded to multiples of 1.9e-6: below that, φ(h)
    is φ(0) to the bit and the remainder is h·|s| exactly, a slope of 1 whatever s is."""
    c, x = 12519222984.333704, np.array([-1.05512175, 1.30344564])
    fn, f0 = _bound(lambda x: (c + np.sum(np.tanh(x))) - c, x)
    exact = float(1 - np.tanh(x[1]) ** 2)
    assert remainder_test(fn, f0, np.eye(2)[1], np.ones(1), exact).verdict != "inconsistent"
