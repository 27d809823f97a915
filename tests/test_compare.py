"""The error budget and the verdict of one comparison, on hand-made numbers."""

import numpy as np
import pytest

from gradcheck._compare import NOISE_SAFETY, SAFETY, EntryNames, Numbers, compare, summarise
from gradcheck._results import Tolerance

TOL = Tolerance(SAFETY, NOISE_SAFETY)
EPS = float(np.finfo(np.float64).eps)


def numbers(value, bound, noise=0.0, kink=0.0):
    value = np.atleast_2d(np.asarray(value, dtype=float))
    full = lambda v: np.broadcast_to(np.asarray(v, dtype=float), value.shape).copy()  # noqa: E731
    return Numbers(value, full(bound), full(noise), full(kink), full(1e-3))


def test_agreement_within_ten_times_the_bound_passes_and_beyond_fails():
    analytic = np.array([[1.0, 2.0]])
    ok = compare(analytic + 9e-9, numbers([1.0, 2.0], 1e-9), eps_a=EPS, tolerance=TOL)
    assert ok.verdict == "pass"
    bad = compare(
        analytic + np.array([[0, 2e-8]]), numbers([1.0, 2.0], 1e-9), eps_a=EPS, tolerance=TOL
    )
    assert bad.verdict == "fail"
    assert bad.mismatch.tolist() == [[False, True]]


def test_noise_part_of_the_bound_counts_three_times_not_ten():
    analytic = np.array([[1.0 + 5e-9]])
    # bound 1e-9, all of it noise: allowed 3e-9 (+ rounding), so 5e-9 is a mismatch
    result = compare(analytic, numbers([1.0], 1e-9, noise=1e-9), eps_a=EPS, tolerance=TOL)
    assert result.verdict == "fail"
    assert result.allowed[0, 0] == pytest.approx(3e-9 + SAFETY * (8 + 64) * EPS * analytic[0, 0])


def test_user_atol_and_rtol_widen_the_budget():
    analytic = np.array([[1.0 + 1e-6]])
    tight = compare(analytic, numbers([1.0], 1e-12), eps_a=EPS, tolerance=TOL)
    loose = compare(
        analytic,
        numbers([1.0], 1e-12),
        eps_a=EPS,
        tolerance=Tolerance(SAFETY, NOISE_SAFETY, 0, 1e-5),
    )
    assert (tight.verdict, loose.verdict) == ("fail", "pass")


def test_nan_analytic_is_nonfinite_and_a_kink_is_nondifferentiable():
    assert compare(
        np.array([[np.nan]]), numbers([1.0], 1e-9), eps_a=EPS, tolerance=TOL
    ).verdict == ("nonfinite")
    kinked = compare(np.array([[0.0]]), numbers([0.5], 1e-9, kink=1.0), eps_a=EPS, tolerance=TOL)
    assert kinked.verdict == "nondifferentiable"


def test_an_entry_without_a_finite_estimate_is_not_a_pass():
    unresolved = compare(np.array([[1.0]]), numbers([np.nan], np.inf), eps_a=EPS, tolerance=TOL)
    assert unresolved.verdict == "inconclusive"


def test_summarise_lists_only_offending_entries_worst_first():
    analytic = np.array([[1.0, 2.0, 3.0]])
    num = numbers([1.0, 2.0 + 1e-3, 3.0 + 1e-2], 1e-9)
    result = compare(analytic, num, eps_a=EPS, tolerance=TOL)
    names = EntryNames(lambda i: f"x[{i}]", np.zeros_like, ("x",))
    summary = summarise("vjp", result, analytic, num, names, tolerance=TOL)
    assert summary.verdict == "fail"
    assert [e.where for e in summary.worst] == ["x[2]", "x[1]"]
    assert summary.histogram is not None
    assert list(summary.histogram["counts"]) == ["x"]
    assert summary.message.startswith("2 of 3 entries differ")
    assert summary.entries == 3


def test_reconcile_widens_only_where_independent_estimates_disagree():
    """Two estimates closer than the first one's error keep its bound; where they disagree
    beyond their errors, one error claim is wrong, and the bound covers the other estimate's
    whole interval."""
    first = numbers([1.0, 2.0], 1e-12, noise=1e-12)
    second = numbers([1.0 + 5e-13, 2.0 + 1e-10], 2e-12)
    first.reconcile(slice(None), second)
    np.testing.assert_allclose(first.bound, [[1e-12, 1e-10 + 2e-12]])
    np.testing.assert_array_equal(first.noise, [[1e-12, 0.0]])
    np.testing.assert_array_equal(first.value, [[1.0, 2.0]])


def test_reconcile_never_claims_less_than_the_gap_of_agreeing_estimates():
    """pinv(a @ b.mT), seed 23: the power-of-two grid claims 3.7e-14 for an estimate 2.8e-13
    off; the 1.5·2^k grid, 1.6e-13 away, agrees within the claims but says that one of them
    is off by at least half that. A gap far below the claims (honest noise) changes nothing."""
    first = numbers([-0.00661840524018893, 1.0], [3.73e-14, 2e-7], noise=[3.73e-14, 2e-7])
    second = numbers([-0.006618405240351288, 1.0 + 1e-8], [1.99e-13, 3e-7])
    first.reconcile(slice(None), second)
    np.testing.assert_allclose(first.bound, [[1.62358e-13, 2e-7]], rtol=1e-5)
    np.testing.assert_array_equal(first.noise, [[3.73e-14, 2e-7]])
    analytic = np.array([[-0.006618405240471892, 1.0]])  # the exact value, to 16 digits
    assert compare(analytic, first, eps_a=EPS, tolerance=TOL).verdict == "pass"
