"""Weighing the thorough starts against each other (`select`), on numbers measured on real
functions."""

import numpy as np

from gradcheck._fd.estimate import select
from gradcheck._fd.ladder import Estimates


def run(value: float, error: float, step: float) -> Estimates:
    """One start's estimate of one entry (one direction, one output)."""
    cell = lambda v: np.array([[v]], dtype=float)  # noqa: E731
    return Estimates(
        value=cell(value),
        error=cell(error),
        step=np.array([step]),
        kink=cell(0.0),
        nonfinite=np.array([False]),
        noise=cell(error),
        evaluations=10,
    )


def test_a_veto_by_samples_no_other_start_bears_out_does_not_count():
    """pinv(a @ b.mT), seed 17, b[40, 1] -> pinv[16, 2] (exact: 0.019844250844972567). Four
    starts reach the same rows at 2e-3 and claim 2.2e-13 for an estimate 1.6e-12 off; the only
    other start that agrees with it (step 2.4e-4) claims 8.7e-13 and cannot tell it from the
    larger-step estimates, right to 3e-14, that it would veto (Note: Vetoes at validated
    precision)."""
    runs = [
        run(0.019844250843367602, 2.18e-13, 0.00195),
        run(0.019844250844900317, 5.68e-14, 0.00391),
        run(0.019844250843367602, 2.18e-13, 0.000488),
        run(0.019844250844891713, 8.71e-13, 0.000244),
        run(0.019844250844958305, 2.81e-14, 0.00391),
        run(0.019844250844958305, 2.81e-14, 0.00391),
        run(0.019844250844900317, 5.68e-14, 0.00391),
    ]
    chosen = select(runs)
    assert abs(chosen.value[0, 0] - 0.019844250844972567) <= chosen.error[0, 0]
    assert chosen.evaluations == 70


def test_small_steps_that_confirm_each_other_still_veto_a_straddled_staircase():
    """floor(x) at 7.5: steps of 1 and more straddle the stairs and agree on a slope of 1;
    the small starts, each on its own samples, see the flat step and veto it."""
    runs = [
        run(1.0, 1e-15, 4.0),
        run(1.0, 1e-15, 2.0),
        run(0.0, 2e-13, 1e-3),
        run(0.0, 2e-12, 1e-4),
        run(0.0, 2e-11, 1e-5),
    ]
    chosen = select(runs)
    assert chosen.value[0, 0] == 0.0
    assert chosen.error[0, 0] == 2e-13
