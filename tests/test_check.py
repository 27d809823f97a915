"""check()/assert_grad() with the NumPy adapter: verdicts, evidence, causes and bad input."""

import json

import numpy as np
import pytest

import gradcheck as gc

X = np.array([0.3, -1.2, 2.0])


def loss(x):
    return np.sum(np.sin(x) ** 2)


def loss_grad(x):
    return np.sin(2 * x)


def test_pass_and_report_contents():
    report = gc.check(loss, X, grad=loss_grad)
    assert report.verdict == "pass"
    assert report.passed
    vjp = report.checks[0]
    assert vjp.kind == "vjp"
    assert vjp.entries == 3
    assert vjp.tolerance is not None
    assert vjp.tolerance.safety > 0
    data = report.to_dict()
    assert data["version"] == 1
    assert data["verdict"] == "pass"
    json.dumps(data)
    assert "PASS" in str(report)


def test_injected_error_fails_with_evidence():
    def wrong(x):
        g = loss_grad(x)
        g[1] *= 1 + 1e-6
        return g

    report = gc.check(loss, X, grad=wrong)
    assert report.verdict == "fail"
    worst = report.checks[0].worst[0]
    assert worst.where == "input[0][1]"
    assert worst.difference > worst.tolerance
    with pytest.raises(gc.GradientError) as info:
        gc.assert_grad(loss, X, grad=wrong)
    assert isinstance(info.value, AssertionError)
    assert info.value.report.verdict == "fail"
    assert "input[0][1]" in str(info.value)


@pytest.mark.parametrize(
    ("wrong", "cause"),
    [
        (lambda x: -loss_grad(x), "sign flip"),
        (lambda x: 2 * loss_grad(x), "factor 2"),
        (lambda x: 0.5 * loss_grad(x), "factor 1/2"),
        (lambda x: np.zeros_like(x), "detached"),
    ],
)
def test_likely_causes(wrong, cause):
    report = gc.check(loss, X, grad=wrong)
    assert report.verdict == "fail"
    assert cause in (report.checks[0].cause or "")


def test_missing_input_gradient_is_named():
    f = lambda a, b: np.sum(a * b)  # noqa: E731
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    report = gc.check(f, a, b, grad=lambda a, b: (b, np.zeros_like(b)))
    assert "input[1]" in report.checks[0].cause


def test_backward_ignoring_its_cotangent_is_caught():
    """A vjp that returns J^T·1 whatever u is: invisible with u = 1, caught by scaling u."""
    vjp = lambda x, u: np.cos(x)  # ignores u  # noqa: E731
    report = gc.check(np.sin, X, vjp=vjp)
    assert report.verdict == "fail"
    fast = gc.check(np.sin, X, vjp=vjp, mode="fast")
    assert fast.verdict == "fail"


def test_transposed_jacobian_in_split_model_chain_rule():
    """A chain rule composed by hand across two split models: y = tanh(W1 x), z = W2 y."""
    rng = np.random.default_rng(1)
    w1, w2 = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    x = rng.standard_normal(3)

    def model(x):
        return w2 @ np.tanh(w1 @ x)

    def jacobian(x):  # dz/dy @ dy/dx
        return w2 @ (np.diag(1 - np.tanh(w1 @ x) ** 2) @ w1)

    assert gc.check(model, x, jacobian=jacobian).passed
    report = gc.check(model, x, jacobian=lambda x: jacobian(x).T)
    assert report.verdict == "fail"
    assert "transposed" in report.checks[0].cause
    # The same chain rule as a vjp of a scalar loss on top passes too.
    vjp = lambda x, u: jacobian(x).T @ u  # noqa: E731
    assert gc.check(model, x, vjp=vjp, mode="fast").passed


def test_transposed_weight_gradient():
    rng = np.random.default_rng(2)
    w, x = rng.standard_normal((3, 3)), rng.standard_normal(3)
    f = lambda w: np.sum(np.tanh(w @ x))  # noqa: E731
    grad = lambda w: np.outer(1 - np.tanh(w @ x) ** 2, x)  # noqa: E731
    assert gc.check(f, w, grad=grad).passed
    report = gc.check(f, w, grad=lambda w: grad(w).T)
    assert "transposed" in report.checks[0].cause


def test_relu_abs_and_max_ties_are_nondifferentiable():
    relu = gc.check(
        lambda x: np.sum(np.maximum(x, 0)),
        np.array([0.0, 1.0]),
        grad=lambda x: (x > 0).astype(float),
    )
    assert relu.verdict == "nondifferentiable"
    absolute = gc.check(lambda x: np.sum(np.abs(x)), np.array([0.0, 2.0]), grad=np.sign)
    assert absolute.verdict == "nondifferentiable"
    ties = gc.check(lambda x: np.max(x), np.array([1.0, 1.0]), grad=lambda x: np.array([1.0, 0.0]))
    assert ties.verdict == "nondifferentiable"
    assert "kink" in ties.checks[0].message


@pytest.mark.parametrize("seed", [19, 24])
def test_a_kink_near_the_point_is_not_one_at_it(seed):
    """A relu unit just off zero for one sample of a vector-valued network: the point is
    differentiable, and the outputs of the other samples, done early, must not stop the ladder
    before its steps are below the kink's distance (these seeds failed, or were called
    nondifferentiable, when they did)."""
    rng = np.random.default_rng(seed)
    w1, w2 = rng.standard_normal((6, 64)), rng.standard_normal(64) / 8
    x = rng.standard_normal((32, 6))

    def jacobian(w):
        active = (x @ w > 0).astype(float)
        return np.einsum("si,sj,j->sij", x, active, w2)

    report = gc.check(lambda w: np.maximum(x @ w, 0) @ w2, w1, jacobian=jacobian)
    assert report.verdict == "pass", str(report)


@pytest.mark.parametrize("seed", [6, 13, 18])
def test_inputs_of_1e6_next_to_weights_of_order_one(seed):
    """Noise is measured with every coordinate moving relative to its own size: when the step
    followed the inputs' scale, the weights moved across relu kinks, the "noise" came out
    enormous, and the steps it forced straddled a kink (these seeds failed or were
    inconclusive)."""
    rng = np.random.default_rng(seed)
    x = 1e6 * rng.standard_normal((3, 4))
    w, v = rng.standard_normal((4, 16)) / 2, rng.standard_normal(16)

    def jacobian(x, w):
        active = (x @ w > 0) * v
        by_x = np.zeros((3, 3, 4))
        by_x[np.arange(3), np.arange(3)] = active @ w.T
        return by_x, np.einsum("si,sj->sij", x, active)

    report = gc.check(lambda x, w: np.maximum(x @ w, 0) @ v, x, w, jacobian=jacobian)
    assert report.verdict == "pass", str(report)


def test_nan_gradient_at_the_kink_of_a_norm_is_evidence_of_the_kink():
    """‖x‖ at 0 is a kink; the NaN that x/‖x‖ gives there is evidence, not the headline."""
    report = gc.check(
        lambda x: np.sqrt(np.sum(x**2)), np.zeros(3), grad=lambda x: x / np.sqrt(np.sum(x**2))
    )
    assert report.verdict == "nondifferentiable", str(report)
    assert "NaN" in report.checks[0].message


def test_nan_gradient_at_a_smooth_point_is_nonfinite():
    report = gc.check(lambda x: np.sum(x**2), np.array([1.0, 0.0]), grad=lambda x: 2 * x / (x != 0))
    assert report.verdict == "nonfinite", str(report)


def test_unseeded_randomness_is_nondeterministic():
    rng = np.random.default_rng()
    report = gc.check(
        lambda x: np.sum(x) + 1e-3 * rng.standard_normal(), X, grad=lambda x: np.ones_like(x)
    )
    assert report.verdict == "nondeterministic"
    assert "seed" in report.checks[0].message


def test_second_order_and_wrong_hessian():
    hvp = lambda x, v: 2 * np.cos(2 * x) * v  # noqa: E731
    report = gc.check(loss, X, grad=loss_grad, hvp=hvp, order=2)
    assert report.passed
    assert any(c.kind == "hvp" and c.order == 2 for c in report.checks)
    bad = gc.check(loss, X, grad=loss_grad, hvp=lambda x, v: hvp(x, v) * 1.001, order=2)
    assert bad.verdict == "fail"
    assert [c.kind for c in bad.checks if c.verdict == "fail"] == ["hvp"]


def test_surrogate_straight_through_and_not_in_effect():
    x = np.array([0.2, 1.7, -0.6])
    # round() with the straight-through gradient (identity): correct against its surrogate.
    assert gc.check(np.round, x, jacobian=lambda x: np.eye(3), surrogate=lambda x: x).passed
    # A "custom" gradient that is just the plain derivative of fn: the override is not in effect.
    fn = lambda x: np.sum(x**3)  # noqa: E731
    report = gc.check(fn, x, grad=lambda x: 3 * x**2, surrogate=lambda x: np.sum(x))
    assert report.verdict == "fail"
    assert "NOT in effect" in report.checks[0].cause


def test_fast_mode_reports_seed_and_passes():
    report = gc.check(loss, X, grad=loss_grad, mode="fast", seed=7)
    assert report.passed
    assert report.seed == 7
    assert report.mode == "fast"


def test_user_tolerances_are_recorded():
    report = gc.check(loss, X, grad=loss_grad, rtol=1e-3, atol=1e-9)
    tol = report.checks[0].tolerance
    assert (tol.rtol, tol.atol) == (1e-3, 1e-9)
    wrong = lambda x: loss_grad(x) * (1 + 1e-5)  # noqa: E731
    assert gc.check(loss, X, grad=wrong, rtol=1e-4).passed  # loosened explicitly


def test_inputs_are_not_mutated():
    x = X.copy()
    gc.check(loss, x, grad=loss_grad)
    assert np.array_equal(x, X)


def test_scalar_and_0d_inputs():
    assert gc.check(lambda x: np.sin(x), 0.5, grad=np.cos).passed
    assert gc.check(lambda x: np.sin(x), np.array(0.5), grad=np.cos).passed


def test_tuple_and_dict_outputs():
    f = lambda x: {"a": np.sin(x), "b": (np.sum(x**2),)}  # noqa: E731

    def vjp(x, u):
        return np.cos(x) * u["a"] + 2 * x * u["b"][0]

    assert gc.check(f, X, vjp=vjp).passed


class BoomError(Exception):
    pass


def test_user_exceptions_propagate_unchanged():
    def f(x):
        raise BoomError("from user code")

    with pytest.raises(BoomError, match="from user code"):
        gc.check(f, X, grad=loss_grad)


@pytest.mark.parametrize(
    ("args", "options", "match"),
    [
        ((np.array([1, 2]),), {"grad": loss_grad}, "no floating-point input"),
        ((np.array([True]),), {"grad": loss_grad}, "no floating-point input"),
        ((X,), {"grad": lambda x: np.ones(2)}, r"shape \(2,\)"),
        ((X,), {}, "no analytic derivative"),
        ((X,), {"grad": loss_grad, "mode": "slow"}, "mode"),
        ((X,), {"grad": loss_grad, "order": 0}, "order"),
        ((X,), {"grad": loss_grad, "rtol": -1.0}, "rtol"),
        ((X,), {"grad": loss_grad, "wrt": 3}, "out of range"),
        ((X,), {"grad": loss_grad, "framework": "mxnet"}, "unknown framework"),
        (("text",), {"grad": loss_grad}, "cannot tell which framework"),
    ],
)
def test_bad_input_is_a_usage_error(args, options, match):
    with pytest.raises(gc.UsageError, match=match):
        gc.check(loss, *args, **options)


def test_integer_input_asked_for_by_wrt():
    with pytest.raises(gc.UsageError, match=r"input\[1\].*int64"):
        gc.check(lambda x, i: np.sum(x[i]), X, np.array([0, 2]), wrt=1, grad=loss_grad)


def test_integer_index_input_passes_through():
    idx = np.array([0, 2])
    report = gc.check(
        lambda x, i: np.sum(x[i] ** 2),
        X,
        idx,
        grad=lambda x, i: np.where(np.isin(np.arange(3), i), 2 * x, 0.0),
    )
    assert report.passed
    assert any("input[1]" in n for n in report.notes)


def test_grad_for_vector_function_is_a_usage_error():
    with pytest.raises(gc.UsageError, match="scalar"):
        gc.check(np.sin, X, grad=np.cos)
