"""The finite-difference engine on its own: known answers, error bars that hold, edge cases."""

import numpy as np
import pytest

import gradcheck as gc


@pytest.mark.parametrize(
    ("order", "exact", "required"),
    [(1, 1 / 3, 1e-10), (2, -1 / 9, 1e-8), (3, 2 / 27, 1e-6), (4, -6 / 81, 1e-4)],
)
def test_log_x_plus_2_known_answers(order, exact, required):
    """The forum case: a naive eps=1e-7 second difference gives -0.1110223 instead of -1/9."""
    d = gc.derivative(lambda x: np.log(x + 2), 1.0, order=order)
    error = abs(float(d.value) - exact)
    assert error <= required * abs(exact)
    assert error <= float(d.error), "the error estimate must cover the true error"
    # Measured: relative errors 7e-15, 5e-14, 3e-9, 4e-8 (numdifftools: 2e-13, 7e-12, 8e-10, 1e-8).


@pytest.mark.parametrize(
    ("f", "x", "exact"),
    [
        (lambda x: np.sin(1e5 * x), 1e-5, 1e5 * np.cos(1.0)),
        (lambda x: np.sin(1e5 * x), 0.0, 1e5),
        (lambda x: np.cos(x / 1e5), 1e5, -np.sin(1.0) / 1e5),
        (np.log, 1e-3, 1e3),
        (np.log, 1e-12, 1e12),
        (np.exp, 700.0, np.exp(700.0)),
        (np.sqrt, 1e-10, 0.5e5),
    ],
)
def test_length_scale_far_from_x(f, x, exact):
    d = gc.derivative(f, x)
    assert abs(float(d.value) - exact) <= max(float(d.error), 1e-12 * abs(exact))
    assert float(d.error) <= 1e-9 * abs(exact)


def test_large_offset_error_is_honest():
    """1e8 + sin x: round-off limits accuracy, and the error estimate says so."""
    d = gc.derivative(lambda x: 1e8 + np.sin(x), 1.0)
    true_error = abs(float(d.value) - np.cos(1.0))
    assert true_error <= float(d.error)
    assert 1e-9 < float(d.error) / np.cos(1.0) < 1e-5


def test_kinks_are_reported():
    relu = gc.derivative(lambda x: np.maximum(x, 0.0), 0.0)
    assert float(relu.kink) == pytest.approx(1.0)
    absolute = gc.derivative(np.abs, 0.0)
    assert float(absolute.kink) == pytest.approx(2.0)
    smooth = gc.derivative(lambda x: x**2, 0.0)
    assert float(smooth.kink) == 0.0


def test_domain_edge_goes_one_sided():
    """sqrt at 0 has no finite derivative: the engine must not invent one."""
    with np.errstate(invalid="ignore"):
        d = gc.derivative(np.sqrt, 0.0)
    assert not np.isfinite(float(d.error)) or float(d.error) >= abs(float(d.value))


def test_one_sided_stencil_near_edge():
    with np.errstate(invalid="ignore"):
        d = gc.derivative(np.sqrt, 1e-300 + 1.0, method=gc.forward(1))
    assert float(d.value) == pytest.approx(0.5, rel=1e-9)


def test_gradient_and_jacobian_shapes():
    x = np.array([[0.1, 0.2], [0.3, 0.4]])
    g = gc.derivative(lambda x: np.sum(x**3), x)
    assert g.value.shape == (2, 2)
    np.testing.assert_allclose(g.value, 3 * x**2, rtol=1e-10)
    j = gc.derivative(lambda x: np.sin(x), np.array([0.1, 0.2, 0.3]))
    assert j.value.shape == (3, 3)
    np.testing.assert_allclose(j.value, np.diag(np.cos([0.1, 0.2, 0.3])), atol=1e-10)


def test_directional():
    x, v = np.array([0.3, -0.7]), np.array([1.0, 2.0])
    d = gc.derivative(lambda x: np.sum(np.tanh(x)), x, direction=v)
    assert float(d.value) == pytest.approx(float(v @ (1 - np.tanh(x) ** 2)), rel=1e-10)


def test_bad_arguments():
    with pytest.raises(gc.UsageError):
        gc.derivative(np.sin, np.array([np.nan]))
    with pytest.raises(gc.UsageError):
        gc.derivative(np.sin, np.zeros(2), direction=np.zeros(2))
