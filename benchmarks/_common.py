"""What the benchmark scripts share: timing, the speed scripts' options, atomic reports."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPORTS = Path(__file__).resolve().parent.parent / "reports" / "benchmarks"

# The speed benchmarks' cases, the same for every framework: (name, kind, size, repeats);
# kind "tanh" is f(x) = sum(tanh(Wx + b)^2) with n = size, kind "mlp" a tanh MLP's loss with
# these layer widths.
SPEED_CASES: tuple[tuple[str, str, Any, int], ...] = (
    ("tanh, n = 10", "tanh", 10, 5),
    ("tanh, n = 100", "tanh", 100, 5),
    ("tanh, n = 1000", "tanh", 1000, 3),
    ("MLP, ~1k params", "mlp", (16, 32, 16, 1), 3),
    ("MLP, ~10k params", "mlp", (32, 96, 64, 1), 1),
)


def timed(run: Callable[[], Any], repeats: int, warm_up: bool = True) -> tuple[float, Any]:
    """Median wall time of `repeats` runs (after one warm-up run), and the last result."""
    result = run() if warm_up else None
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def speed_arguments(doc: str, out: Path) -> argparse.ArgumentParser:
    """The options every speed benchmark takes: --quick and --out."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run per case, no repeats")
    parser.add_argument("--out", type=Path, default=out, help="where to write the table")
    return parser


def write_atomically(path: Path, text: str) -> None:
    """Write a report so that an interrupted run never leaves half of one behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is for everyone
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def publish(text: str, path: Path) -> None:
    """Write the report atomically and show it."""
    write_atomically(path, text)
    print(text)
