"""A long full check shows its progress on a terminal, and nowhere else."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pty = pytest.importorskip("pty")

# A full check of 300 coordinates, announced as long (the threshold is lowered for the test
# instead of making the function slow).
SCRIPT = """
import numpy as np, gradcheck as gc, gradcheck._plan as plan
plan.LONG_SECONDS = 0.0
report = gc.check(lambda x: np.sum(np.sin(x)), np.linspace(0.1, 1, 300), grad=np.cos)
print("verdict", report.verdict)
"""


def _on_a_terminal() -> str:
    """Everything the script writes to a pseudo-terminal (its stdout and stderr).

    subprocess, not pty.fork: os.fork in a process that has loaded JAX warns (and the suite
    turns warnings into errors), while subprocess starts the child without Python's fork.
    """
    main, child_end = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stdin=child_end, stdout=child_end, stderr=child_end
    )
    os.close(child_end)
    chunks = []
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    child.wait(timeout=120)
    os.close(main)
    return b"".join(chunks).decode(errors="replace")


def test_a_long_check_draws_a_bar_of_evaluations_on_a_terminal():
    text = _on_a_terminal()
    assert "gradcheck: 300 coordinates" in text  # the bar's label
    assert "/2400" in text  # evaluations done out of the plan's 8 per coordinate
    assert "verdict pass" in text


def test_without_a_terminal_there_is_only_the_announcement():
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=120
    )
    assert "verdict pass" in run.stdout
    assert "mode='fast'" in run.stderr  # the logged estimate and hint
    assert "gradcheck: 300 coordinates" not in run.stderr  # no bar
