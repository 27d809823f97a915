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


def test_a_fixed_step_reproduces_its_differences_and_is_noted():
    report = gc.check(f, X, jacobian=jac, step=1e-3)
    assert report.verdict == "pass", str(report)
    assert any("step=0.001" in note for note in report.notes)
    assert {c.step.size for c in report.checks if c.step is not None} == {1e-3}
    wrong = gc.check(f, X, jacobian=lambda x: 1.001 * jac(x), step=1e-3)
    assert wrong.verdict == "fail"


def test_a_coarse_fixed_step_is_judged_by_what_it_can_resolve():
    # at h = 0.5 the central difference of sin is 4 % off: its error estimate says so, so the
    # correct gradient passes and only errors beyond that resolution can be caught
    report = gc.check(f, X, jacobian=jac, step=0.5)
    assert report.verdict == "pass", str(report)
    assert report.checks[0].step.error > 1e-2
    assert gc.check(f, X, jacobian=lambda x: 0.5 * jac(x), step=0.5).verdict == "fail"


def test_max_evaluations_switches_full_mode_to_fast_with_a_note():
    x = np.linspace(0.1, 2.0, 50)
    report = gc.check(lambda x: np.sum(np.sin(x)), x, grad=np.cos, max_evaluations=100)
    assert report.mode == "fast"
    assert any("max_evaluations=100" in note for note in report.notes)
    assert report.verdict == "pass"
    with pytest.raises(gc.UsageError, match="max_evaluations"):
        gc.check(f, X, jacobian=jac, max_evaluations=0)
    with pytest.raises(gc.UsageError, match="step"):
        gc.check(f, X, jacobian=jac, step=0.0)


def test_a_long_full_check_is_announced_with_a_hint(caplog):
    import time

    from gradcheck._options import Options
    from gradcheck._plan import plan
    from gradcheck.adapters.numpy import NumpyAdapter

    def slow(x):
        time.sleep(0.01)
        return np.sum(x**2)

    target = NumpyAdapter().bind(slow, [np.ones(300)], {}, None)
    with caplog.at_level("WARNING", logger="gradcheck"):
        options, notes, long = plan(Options(), target)
    assert notes == ()
    assert options.mode == "full"
    assert long is not None  # the evaluations a progress bar counts
    assert long >= 300
    assert "mode='fast'" in caplog.text
    assert "300 coordinates" in caplog.text


def test_a_mode_asked_for_by_name_that_is_missing_fails():
    """checks=("jvp",) on a function without forward mode: a fail, as torch's
    check_forward_ad=True fails; by default the same is only a note."""
    default = gc.check(f, X, jacobian=jac)
    assert default.verdict == "pass"
    assert any("forward mode not checked" in note for note in default.notes)
    named = gc.check(f, X, jacobian=jac, checks=("vjp", "jvp"))
    assert named.verdict == "fail"
    assert "forward mode was asked for" in str(named)


def test_round_off_that_changes_from_call_to_call_is_noise_not_nondeterminism():
    """Threaded BLAS: repeats differ by ulps of f (lstsq in OpInfo); dropout-sized ones do not."""
    assert gc.check(Jittery(1e-16), X, grad=np.cos).verdict == "pass"
    report = gc.check(Jittery(1e-16), X, grad=np.cos)
    assert any("folded into the noise budget" in note for note in report.notes)
    assert gc.check(Jittery(1e-6), X, grad=np.cos).verdict == "nondeterministic"


def test_a_full_check_past_the_memory_share_runs_in_fast_mode(monkeypatch):
    """OpInfo's slice_scatter (n = 12000, m = 8000) was killed for memory in full mode."""
    import gradcheck._plan as planning

    monkeypatch.setattr(planning, "MEMORY_SHARE", 1e-9)  # instead of a 10 GB Jacobian
    report = gc.check(
        lambda x: np.sin(x), np.linspace(0.1, 1.0, 50), jacobian=lambda x: np.diag(np.cos(x))
    )
    assert report.mode == "fast"
    assert report.verdict == "pass", report
    assert any("would hold 50x50 Jacobians" in note for note in report.notes)
