"""Keras picks its backend at import, so its tests run a script in a subprocess per backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_keras_script(script: str, backend: str, timeout: float) -> dict[str, dict[str, object]]:
    """The JSON lines `script` prints under KERAS_BACKEND=backend, keyed by their "case"."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {str(line["case"]): line for line in lines}
