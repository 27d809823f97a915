"""`python -m gradcheck` is the `gradcheck` console command: same help, version and audit."""

import subprocess
import sys
from pathlib import Path

import gradcheck


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gradcheck", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def test_help_and_version():
    help_run = run("--help")
    assert help_run.returncode == 0
    assert "audit" in help_run.stdout
    assert "report" in help_run.stdout
    version = run("--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"gradcheck {gradcheck.__version__}")


def test_audit_writes_the_reports(tmp_path):
    (tmp_path / "cases.py").write_text(
        "import numpy as np, gradcheck\n"
        "@gradcheck.case(np.array([1.0]), grad=np.cos)\n"
        "def fine(x):\n    return np.sum(np.sin(x))\n"
    )
    audit = run("audit", "cases.py", cwd=tmp_path)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "PASS" in audit.stdout
    assert (tmp_path / "reports" / "gradcheck.json").exists()


def test_a_bare_call_shows_usage():
    bare = run()
    assert bare.returncode == 2
    assert "audit" in bare.stdout + bare.stderr
