"""The README's commands: `gradcheck audit examples/` passes, every file in examples/buggy fails.

One audit over both folders, through the real console entry point (``python -m gradcheck``)
with two workers, as a fresh clone would run it; the scenario's own finding is checked for
the buggy files whose story names one.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from gradcheck.reporting import read_json

ROOT = Path(__file__).parent.parent.parent
EXAMPLES = ROOT / "examples"
FRAMEWORKS = ("torch", "jax", "tensorflow", "keras", "pytensor")
STORIES = {  # buggy file -> words its finding must contain
    "torch_guided_backprop.py": "NOT in effect",
    "tf_straight_through.py": "NOT in effect",
    "pytensor_guided_backprop.py": "NOT in effect",
}


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    missing = [f for f in FRAMEWORKS if importlib.util.find_spec(f) is None]
    if missing:
        pytest.skip(f"the examples need {', '.join(missing)}")
    out = tmp_path_factory.mktemp("examples")
    command = [sys.executable, "-m", "gradcheck", "audit", "examples", "examples/buggy"]
    done = subprocess.run(
        [*command, "--jobs", "2", "--out", str(out), "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return done, read_json((out / "gradcheck.json").read_text())


def _by_file(run):
    found = {}
    for outcome in run.outcomes:
        unit = outcome.name.partition("::")[0]
        found.setdefault(unit, []).append(outcome)
    return found


def test_every_example_passes(audit):
    done, run = audit
    examples = {u: o for u, o in _by_file(run).items() if not u.startswith("examples/buggy/")}
    tests = {"conftest.py", *(p.name for p in EXAMPLES.glob("test_*.py"))}  # pytest's to run
    expected = {f"examples/{p.name}" for p in EXAMPLES.glob("*.py") if p.name not in tests}
    assert set(examples) == expected
    failing = [o.name for os_ in examples.values() for o in os_ if o.finding]
    assert not failing, done.stdout


def test_every_buggy_example_is_caught(audit):
    done, run = audit
    assert done.returncode == 1, done.stdout + done.stderr
    buggy = {u: o for u, o in _by_file(run).items() if u.startswith("examples/buggy/")}
    assert set(buggy) == {f"examples/buggy/{p.name}" for p in (EXAMPLES / "buggy").glob("*.py")}
    for unit, outcomes in buggy.items():
        findings = [o for o in outcomes if o.status == "fail"]
        assert findings, f"{unit}: nothing caught"
        story = STORIES.get(Path(unit).name)
        if story:
            assert any(story in o.text for o in findings), unit
    assert "examples/buggy/torch_guided_backprop.py::class_score" in done.stdout
