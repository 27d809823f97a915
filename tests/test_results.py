"""Reports as values: verdict precedence, the versioned JSON form, the readable text."""

import json

import numpy as np

import gradcheck as gc
from gradcheck._results import SCHEMA_VERSION, worst_verdict


def test_worst_verdict_precedence():
    assert worst_verdict([]) == "pass"
    assert worst_verdict(["pass", "inconclusive"]) == "inconclusive"
    assert worst_verdict(["nondifferentiable", "fail"]) == "fail"
    assert worst_verdict(["fail", "nonfinite"]) == "nonfinite"
    assert worst_verdict(["nonfinite", "nondeterministic"]) == "nondeterministic"


def wrong_report() -> gc.Report:
    x = np.array([0.3, -1.2, 2.0])
    return gc.check(
        lambda x: np.sum(np.sin(x) ** 2), x, grad=lambda x: -2 * np.sin(x) * np.cos(x), seed=3
    )


def test_to_dict_is_json_and_versioned():
    report = wrong_report()
    data = json.loads(json.dumps(report.to_dict()))
    assert data["schema"] == "gradcheck.report"
    assert data["version"] == SCHEMA_VERSION
    assert (data["verdict"], data["passed"], data["seed"]) == ("fail", False, 3)
    vjp = data["checks"][0]
    assert vjp["kind"] == "vjp"
    assert vjp["worst"]
    assert set(vjp["worst"][0]) == {
        "curve",
        "where",
        "analytic",
        "numeric",
        "bound",
        "tolerance",
        "step",
    }
    assert data["inputs"] == ["input[0]: float64[3]"]
    curve = vjp["worst"][0]["curve"]  # the V curve of a finding, for plots
    assert len(curve["step"]) == len(curve["estimate"]) > 10
    assert sum(vjp["histogram"]["counts"]["input[0]"]) == 3


def test_text_names_verdict_entries_and_cause():
    text = str(wrong_report())
    assert text.startswith("gradcheck FAIL")
    assert "input[0][1]" in text
    assert "likely cause" in text
    assert "sign" in text
