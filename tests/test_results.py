"""Reports as values: verdict precedence, the versioned JSON form, the readable text."""

import json

import numpy as np
import pytest

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


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_histogram_counts_each_input_apart(mode):
    """Each input's entries land in its own histogram, in the inputs' order, whichever output
    or probe they belong to (an empty input has none)."""
    torch = pytest.importorskip("torch")
    a = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[0.5, 0.7], [-0.1, 1.1]], dtype=torch.float64, requires_grad=True)
    empty = torch.zeros(0, dtype=torch.float64, requires_grad=True)

    def fn(a, empty, b):
        return torch.cat([a.sin() * b.sum(), b.cos().ravel(), empty])

    report = gc.check(fn, a, empty, b, mode=mode)
    counts = report.checks[0].histogram["counts"]
    assert list(counts) == ["input[0]", "input[2]"]
    if mode == "full":  # every nonzero entry of the (7, 3 + 4) Jacobian
        assert (sum(counts["input[0]"]), sum(counts["input[2]"])) == (3, 12 + 4)


def test_text_names_verdict_entries_and_cause():
    text = str(wrong_report())
    assert text.startswith("gradcheck FAIL")
    assert "input[0][1]" in text
    assert "likely cause" in text
    assert "sign" in text
