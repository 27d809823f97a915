"""`gradcheck audit` and `gradcheck report` end to end: exit codes, isolation, reports, config.

Cases are NumPy functions in temporary files, so that each audit's worker starts in well
under a second; discovery of framework objects is tested in tests/audit/.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gradcheck
from gradcheck.cli import app
from gradcheck.reporting import CaseOutcome, Run, read_json, to_json

PASSING = """
import numpy as np
import gradcheck

@gradcheck.case(np.array([0.5, 1.0]), grad=np.cos)
def total_sin(x):
    return np.sum(np.sin(x))
"""
FAILING = """
import numpy as np
import gradcheck

@gradcheck.case(np.array([0.5, 1.0]), grad=lambda x: 1.001 * np.cos(x))
def total_sin_off(x):
    return np.sum(np.sin(x))
"""
TROUBLE = """
import os, time
import numpy as np
import gradcheck

@gradcheck.case(np.array([1.0]))
def raises(x):
    raise RuntimeError("boom")

@gradcheck.case(np.array([1.0]))
def hangs(x):
    time.sleep(60)

@gradcheck.case(np.array([1.0]))
def exits(x):
    print("last words")
    os._exit(3)

@gradcheck.case(np.array([1.0]))
def segfaults(x):
    import ctypes
    ctypes.string_at(0)  # reads address 0: SIGSEGV

@gradcheck.case(np.array([0.5]), grad=np.cos)
def fine(x):
    return np.sum(np.sin(x))
"""


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def outcomes(folder: Path) -> dict[str, CaseOutcome]:
    run = read_json((folder / "gradcheck.json").read_text())
    return {o.name.partition("::")[2]: o for o in run.outcomes}


def test_help_and_version():
    result = invoke("--help")
    assert result.exit_code == 0
    assert "audit" in result.output
    assert "report" in result.output
    result = invoke("audit", "--help")
    assert result.exit_code == 0
    for option in ("--mode", "--format", "--out", "--select", "--ignore", "--jobs", "--timeout"):
        assert option in result.output
    result = invoke("--version")
    assert (result.exit_code, result.output.strip()) == (0, f"gradcheck {gradcheck.__version__}")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["audit", "no/such/file.py"], "no such file or folder"),
        (["audit", "no_such_module_xyz"], "neither a file, a folder nor an importable module"),
        (["audit", "{passing}", "--format", "pdf"], "unknown report format 'pdf'"),
        (["audit", "{passing}", "--out"], "requires an argument"),
        (["audit", "{passing}", "--jobs", "0"], "--jobs"),
        (["report", "{passing}"], "not a gradcheck results file"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, args, complaint):
    passing = write(tmp_path, "passing.py", PASSING)
    result = invoke(*(a.format(passing=passing) for a in args))
    assert result.exit_code == 2, result.output
    assert complaint in result.output
    assert "Traceback" not in result.output


def test_pass_is_0_and_every_format_is_written(tmp_path):
    write(tmp_path, "passing.py", PASSING)
    result = invoke("audit", tmp_path, "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert names == ["gradcheck.html", "gradcheck.json", "gradcheck.junit.xml", "gradcheck.md"]
    (case,) = outcomes(tmp_path / "r").values()
    assert (case.status, case.line) == ("pass", 5)
    assert "PASS" in result.output


def test_findings_are_1_and_the_report_is_printed(tmp_path):
    write(tmp_path, "failing.py", FAILING)
    result = invoke("audit", tmp_path / "failing.py", "--out", tmp_path / "r", "-f", "json")
    assert result.exit_code == 1, result.output
    assert "gradcheck FAIL: total_sin_off" in result.output
    assert "1 finding(s)" in result.output
    assert [p.name for p in (tmp_path / "r").iterdir()] == ["gradcheck.json"]


def test_an_import_error_is_2_and_reported(tmp_path):
    write(tmp_path, "broken.py", "import no_such_package_xyz\n")
    write(tmp_path, "passing.py", PASSING)
    result = invoke("audit", tmp_path, "--out", tmp_path / "r")
    assert result.exit_code == 2, result.output
    run = read_json((tmp_path / "r" / "gradcheck.json").read_text())
    broken, passing = run.outcomes
    assert broken.status == "error"
    assert "ModuleNotFoundError" in broken.message
    assert passing.status == "pass"  # the other module still ran
    assert run.meta["unimportable"] == [broken.name]


def test_a_raise_a_hang_and_a_crash_are_errors_of_their_case_only(tmp_path):
    write(tmp_path, "trouble.py", TROUBLE)
    start = time.perf_counter()
    result = invoke("audit", tmp_path, "--out", tmp_path / "r", "--timeout", "3")
    assert time.perf_counter() - start < 30
    assert result.exit_code == 1, result.output
    found = outcomes(tmp_path / "r")
    assert {k: v.status for k, v in found.items()} == {
        "raises": "error",
        "hangs": "error",
        "exits": "error",
        "segfaults": "error",
        "fine": "pass",
    }
    assert found["raises"].message == "RuntimeError: boom"
    assert 'raise RuntimeError("boom")' in found["raises"].text  # the user's frame is shown
    assert found["hangs"].message.startswith("timed out after 3 s")
    assert found["exits"].message == "its worker process died (exit code 3)"
    assert "last words" in found["exits"].text
    assert found["segfaults"].message == "its worker process died (killed by SIGSEGV)"


def test_select_and_ignore(tmp_path):
    write(tmp_path, "trouble.py", TROUBLE)
    result = invoke(
        "audit",
        tmp_path,
        "--out",
        tmp_path / "r",
        "--select",
        "*::fine",
        "--select",
        "*::r*",
        "--ignore",
        "*::raises",
    )
    assert result.exit_code == 0, result.output
    assert list(outcomes(tmp_path / "r")) == ["fine"]


def test_jobs_give_the_same_outcomes_in_the_same_order(tmp_path):
    for k in range(3):
        write(tmp_path, f"m{k}.py", PASSING if k != 1 else FAILING)
    serial = invoke("audit", tmp_path, "--out", tmp_path / "one")
    parallel = invoke("audit", tmp_path, "--out", tmp_path / "two", "--jobs", "2")
    assert (serial.exit_code, parallel.exit_code) == (1, 1)
    one = read_json((tmp_path / "one" / "gradcheck.json").read_text())
    two = read_json((tmp_path / "two" / "gradcheck.json").read_text())
    assert [(o.name, o.status) for o in one.outcomes] == [(o.name, o.status) for o in two.outcomes]
    assert two.meta["jobs"] == 2


def test_defaults_from_pyproject(tmp_path, monkeypatch):
    write(tmp_path, "trouble.py", TROUBLE)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.gradcheck]\nformat = ["json", "md"]\nout = "audit-out"\n'
        'ignore = ["*::raises", "*::hangs", "*::exits", "*::segfaults"]\nseed = 7\n'
    )
    monkeypatch.chdir(tmp_path)
    result = invoke("audit", "trouble.py")
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "audit-out").iterdir())
    assert written == ["gradcheck.json", "gradcheck.md"]
    run = read_json((tmp_path / "audit-out" / "gradcheck.json").read_text())
    assert run.meta["seed"] == 7
    assert run.outcomes[0].report["seed"] == 7
    result = invoke("audit", "trouble.py", "--format", "junit", "--select", "*::fine")
    assert result.exit_code == 0  # the command line wins over the file
    assert (tmp_path / "audit-out" / "gradcheck.junit.xml").exists()


def test_a_bad_pyproject_key_is_a_usage_error(tmp_path, monkeypatch):
    write(tmp_path, "passing.py", PASSING)
    (tmp_path / "pyproject.toml").write_text("[tool.gradcheck]\nformats = ['json']\n")
    monkeypatch.chdir(tmp_path)
    result = invoke("audit", "passing.py")
    assert result.exit_code == 2
    assert "unknown key 'formats'" in result.output


def test_report_merges_runs(tmp_path):
    first = Run((CaseOutcome("a.py::f", "pass", 1.0),), meta={"duration": 1.0})
    second = Run((CaseOutcome("b.py::g", "fail", 2.0, "b.py", 4, message="off"),), True)
    for name, run in (("one.json", first), ("two.json", second)):
        (tmp_path / name).write_text(to_json(run))
    result = invoke("report", tmp_path / "one.json", tmp_path / "two.json", "--out", tmp_path / "r")
    assert result.exit_code == 1, result.output
    merged = read_json((tmp_path / "r" / "gradcheck.json").read_text())
    assert [o.name for o in merged.outcomes] == ["a.py::f", "b.py::g"]
    assert merged.partial
    assert "interrupted" in (tmp_path / "r" / "gradcheck.md").read_text()
    result = invoke("report", tmp_path / "one.json", "--out", tmp_path / "r2", "-f", "md")
    assert result.exit_code == 0


def test_github_actions_summary_and_annotations(tmp_path):
    write(tmp_path, "failing.py", FAILING)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    result = invoke("audit", tmp_path, "--out", tmp_path / "r", "-f", "json", env=env)
    assert result.exit_code == 1
    assert summary.read_text().startswith("earlier step\n## gradcheck: ❌ 1 of 1")
    assert f"::error file={tmp_path / 'failing.py'},line=5,title=gradcheck fail" in result.output


def test_ctrl_c_writes_a_partial_report(tmp_path):
    write(tmp_path, "a.py", PASSING)
    write(tmp_path, "b.py", TROUBLE.replace("time.sleep(60)", "time.sleep(600)"))
    out = tmp_path / "r"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gradcheck",
            "audit",
            "a.py",
            "b.py",
            "--out",
            str(out),
            "--timeout",
            "900",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C would see it
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:  # wait until the hanging case is running
        seen.append(line)
        if "b.py::raises" in line:
            break
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 130, "".join(seen) + rest
    run = read_json((out / "gradcheck.json").read_text())
    assert run.partial
    assert [o.name for o in run.outcomes] == ["a.py::total_sin", "b.py::raises"]
    assert "interrupted" in (out / "gradcheck.md").read_text()
    assert "INTERRUPTED" in rest
