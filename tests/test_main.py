"""`python -m gradcheck`: every case runs, findings give exit 1, the report is complete."""

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples" / "numpy_losses.py"


def test_audit_of_the_numpy_examples(tmp_path):
    out = tmp_path / "audit.json"
    run = subprocess.run(
        [sys.executable, "-m", "gradcheck", str(EXAMPLES), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr  # softplus_buggy is wrong on purpose
    report = json.loads(out.read_text())
    verdicts = {c["case"]: c["verdict"] for c in report["cases"]}
    assert verdicts.pop("softplus_buggy") == "fail"
    assert set(verdicts.values()) == {"pass"}
    assert report["total"] == 5


def test_a_crashing_case_does_not_hide_the_others(tmp_path):
    module = tmp_path / "cases.py"
    module.write_text(
        "import numpy as np, gradcheck\n"
        "@gradcheck.case(np.array([1.0]))\n"
        "def crashes(x):\n    raise RuntimeError('boom')\n"
        "@gradcheck.case(np.array([1.0]), grad=np.cos)\n"
        "def fine(x):\n    return np.sum(np.sin(x))\n"
    )
    out = tmp_path / "audit.json"
    run = subprocess.run(
        [sys.executable, "-m", "gradcheck", str(module), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    cases = {c["case"]: c for c in json.loads(out.read_text())["cases"]}
    assert cases["crashes"]["verdict"] == "error"
    assert "boom" in cases["crashes"]["error"]
    assert cases["fine"]["verdict"] == "pass"


def test_report_is_readable_by_others(tmp_path):
    out = tmp_path / "audit.json"
    subprocess.run(
        [sys.executable, "-m", "gradcheck", str(EXAMPLES), "--out", str(out)],
        capture_output=True,
        check=False,
    )
    assert out.stat().st_mode & 0o044 == 0o044
    assert not list(tmp_path.glob(".audit.json.*"))  # no temporary file left behind
