"""The options of check(): validation, checks=, nondet_tol=."""

import numpy as np
import pytest

import gradcheck as gc

X = np.array([0.3, -1.2, 2.0])


def f(x):
    return np.sin(x)


def jac(x):
    return np.diag(np.cos(x))


def jvp(x, v):
    return np.cos(x) * v


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("order", 0),
        ("order", 1.5),
        ("mode", "quick"),
        ("rtol", -1),
        ("atol", float("nan")),
        ("seed", "1"),
        ("checks", ("vjp", "hessian")),
        ("checks", ()),
        ("nondet_tol", -1e-9),
    ],
)
def test_bad_options_are_usage_errors(option, value):
    with pytest.raises(gc.UsageError, match=option if option != "checks" else "checks"):
        gc.check(f, X, jacobian=jac, **{option: value})


def test_checks_selects_the_kinds_reported():
    both = gc.check(f, X, jacobian=jac, jvp=jvp)
    assert [c.kind for c in both.checks] == ["vjp", "jvp", "adjoint"]
    only_forward = gc.check(f, X, jacobian=jac, jvp=jvp, checks=("jvp",))
    assert [c.kind for c in only_forward.checks] == ["jvp"]
    assert gc.check(f, X, jacobian=jac, jvp=jvp, checks="adjoint").checks[0].kind == "adjoint"


def test_checks_still_catches_a_wrong_rule_in_the_chosen_route():
    wrong = lambda x, v: 1.001 * np.cos(x) * v  # noqa: E731
    assert gc.check(f, X, jacobian=jac, jvp=wrong, checks=("jvp",)).verdict == "fail"
    assert gc.check(f, X, jacobian=jac, jvp=wrong, checks=("vjp",)).verdict == "pass"


class Jittery:
    """sin(x) plus a tiny, different perturbation at every call: atomics-like nondeterminism."""

    def __init__(self, size: float) -> None:
        self.size, self.rng = size, np.random.default_rng(0)

    def __call__(self, x):
        return np.sum(np.sin(x)) + self.size * self.rng.uniform(-1, 1)


def test_nondet_tol_folds_tiny_nondeterminism_into_the_budget():
    grad = np.cos
    assert gc.check(Jittery(1e-13), X, grad=grad).verdict == "nondeterministic"
    report = gc.check(Jittery(1e-13), X, grad=grad, nondet_tol=1e-12)
    assert report.verdict == "pass"
    wrong = lambda x: np.cos(x) * 1.01  # noqa: E731
    assert gc.check(Jittery(1e-13), X, grad=wrong, nondet_tol=1e-12).verdict == "fail"
