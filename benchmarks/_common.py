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


def speed_cases(tiny: bool) -> tuple[tuple[str, str, Any, int], ...]:
    """SPEED_CASES, or with `tiny` only the smallest one (what a smoke test can afford)."""
    return SPEED_CASES[:1] if tiny else SPEED_CASES


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
    """The options every speed benchmark takes: --quick, --tiny and --out."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run per case, no repeats")
    parser.add_argument(
        "--tiny", action="store_true", help="the smallest case once: the smoke test's configuration"
    )
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


def _git(*args: str) -> str:
    import subprocess

    try:
        done = subprocess.run(
            ["git", *args], cwd=REPORTS.parent.parent, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def git_commit() -> str:
    """The short commit of the gradcheck engine being measured.

    Other sessions change the core while benchmarks run, so a report names the engine that
    produced its figures: a snapshot's commit (see `engine_snapshot`), or the work tree's HEAD
    with '+dirty' when gradcheck/ has uncommitted changes.
    """
    import gradcheck

    stamp = Path(gradcheck.__file__).resolve().parent.parent / "ENGINE_COMMIT"
    if stamp.exists():
        return stamp.read_text(encoding="utf-8").strip()
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if _git("status", "--porcelain", "--", "gradcheck") else "")


def engine_snapshot(rev: str = "HEAD") -> Path:
    """A read-only copy of gradcheck/ at `rev`, to put first on PYTHONPATH.

    A long sweep then measures one committed engine from start to end, even while the work
    tree is being restructured (and is briefly unimportable) under it. Returns the folder that
    holds the `gradcheck` package and an ENGINE_COMMIT stamp.
    """
    import io
    import subprocess
    import tarfile

    commit = _git("rev-parse", "--short", rev)
    if not commit:
        raise SystemExit(f"no commit {rev!r} in {REPORTS.parent.parent}")
    dest = Path(tempfile.gettempdir()) / f"gradcheck-engine-{commit}"
    if not (dest / "ENGINE_COMMIT").exists():
        archive = subprocess.run(
            ["git", "archive", commit, "gradcheck"],
            cwd=REPORTS.parent.parent,
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(dest, filter="data")
        (dest / "ENGINE_COMMIT").write_text(commit + "\n", encoding="utf-8")
    return dest


def select_engine(argv: list[str] | None = None) -> str | None:
    """Honour `--engine REV` before gradcheck is imported: put a snapshot first on sys.path.

    Scripts that add the repository root to sys.path (for tests.families) would otherwise
    import the work tree's gradcheck whatever PYTHONPATH says. Returns REV, or None.
    """
    import sys

    argv = sys.argv[1:] if argv is None else argv
    rev = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--engine"), None)
    rev = rev or next((a.split("=", 1)[1] for a in argv if a.startswith("--engine=")), None)
    if rev:
        sys.path.insert(0, str(engine_snapshot(rev)))
    return rev
