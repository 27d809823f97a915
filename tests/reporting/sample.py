"""A fixed run for the writers' tests: every status, hostile strings, plot data, no clock."""

from gradcheck.reporting import CaseOutcome, Run

HOSTILE = "<script>alert('x')</script> | `tick` *star* & \x1b[31m"


def _entry(where, analytic, numeric, bound, tolerance, curve=None):
    entry = {
        "where": where,
        "analytic": analytic,
        "numeric": numeric,
        "bound": bound,
        "tolerance": tolerance,
        "step": 0.03125,
    }
    if curve is not None:
        entry["curve"] = curve
    return entry


def _report(verdict, worst, extra_checks=()):
    return {
        "schema": "gradcheck.report",
        "version": 1,
        "name": "softplus",
        "framework": "numpy",
        "verdict": verdict,
        "passed": verdict == "pass",
        "mode": "full",
        "order": 1,
        "seed": 0,
        "inputs": ["input[0]: float64[3]"],
        "notes": [],
        "checks": [
            {
                "kind": "vjp",
                "order": 1,
                "verdict": verdict,
                "message": "3 of 3 entries differ, the worst by 1.5e+09x its tolerance",
                "cause": None,
                "entries": 3,
                "evaluations": 292,
                "tolerance": {"safety": 10.0, "noise_safety": 3.0, "atol": 0.0, "rtol": 0.0},
                "step": {"size": 0.03125, "error": 1.5e-13},
                "worst": worst,
            },
            *extra_checks,
        ],
    }


CURVE = {
    "step": [0.5, 0.25, 0.125, 0.0625, 0.03125, 1e-3, 1e-5, 1e-7],
    "estimate": [0.93, 0.951, 0.9524, 0.95256, 0.952574, 0.952574, 0.9525745, 0.95262],
}
TAYLOR = {
    "kind": "taylor",
    "order": 1,
    "verdict": "fail",
    "message": "the Taylor remainder falls as h^1.00",
    "cause": None,
    "entries": 1,
    "evaluations": 48,
    "tolerance": None,
    "step": None,
    "worst": [],
    "remainders": [
        {
            "where": "input[0][2]",
            "h": [1.0, 0.5, 0.25, 0.125, 0.0625],
            "r": [1e-3, 5e-4, 2.5e-4, 1.25e-4, 6.25e-5],
            "slope": 1.0,
        }
    ],
}
FAILING = _report(
    "fail",
    [
        _entry("input[0][2]", 0.9535267, 0.9525741, 1.6e-13, 6.2e-13, CURVE),
        _entry("input[0][1]", 0.6230818, 0.6224593, 1.3e-13, 5.2e-13),
        _entry("input[0][0]", 0.2692104, 0.2689414, 1.2e-13, 5.1e-13),
    ],
    [TAYLOR],
)
PASSING = _report("pass", [_entry("input[0][0]", 0.5, 0.5, 1e-14, 1e-12)])


def sample_run(partial: bool = False) -> Run:
    """Five outcomes: pass, fail (with plot data), error, skipped, nonfinite; fixed meta."""
    return Run(
        (
            CaseOutcome(
                "examples/losses.py::tanh_loss",
                "pass",
                0.25,
                "examples/losses.py",
                10,
                PASSING,
                "vjp: 3 entries agree",
                "gradcheck PASS: tanh_loss",
            ),
            CaseOutcome(
                "examples/losses.py::softplus[x=[-1 0.5 3]]",
                "fail",
                0.5,
                "examples/losses.py",
                20,
                FAILING,
                "vjp: 3 of 3 entries differ",
                "gradcheck FAIL: softplus\n  [fail] vjp: 3 of 3 entries differ",
            ),
            CaseOutcome(
                f"examples/odd.py::{HOSTILE}",
                "error",
                1.0,
                "examples/odd.py",
                3,
                None,
                f"RuntimeError: {HOSTILE}",
                f"Traceback (most recent call last):\n  ```\nRuntimeError: {HOSTILE}",
            ),
            CaseOutcome(
                "examples/odd.py::Net",
                "skipped",
                0.0,
                "examples/odd.py",
                30,
                None,
                "Net() needs constructor arguments (hidden: int)",
            ),
            CaseOutcome(
                "examples/odd.py::log_at_zero",
                "nonfinite",
                0.125,
                None,
                None,
                None,
                "vjp: the analytic gradient is inf",
                "gradcheck NONFINITE: log_at_zero",
            ),
        ),
        partial,
        {
            "gradcheck": "0.1.0",
            "command": "gradcheck audit examples/",
            "mode": "full",
            "seed": 0,
            "started": "2026-01-02T03:04:05+00:00",
            "duration": 1.875,
        },
    )
