"""SVG plots for reports/benchmarks/README.md, drawn from the benchmark outputs already there.

Nothing is re-measured: the speed tables (torch.md, jax.md, tensorflow.md), the engine table
(engine.md) and the OpInfo records (opinfo.jsonl and its shards) are parsed and drawn, so the
plots always show the figures the reports state.
- speed.svg: check time against input size n, per framework, each tool a line;
- engine.svg: relative error against function evaluations, gc.derivative vs numdifftools;
- opinfo_time.svg: time per OpInfo sample against n for the three checkers.

Run from the repository root: `.venv/bin/python benchmarks/plots.py` (a few seconds).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPORTS

plt.rcParams["svg.hashsalt"] = "gradcheck"  # stable ids: a re-run changes no byte
METADATA = {"Date": None, "Creator": "benchmarks/plots.py"}


def table_rows(text: str, first_header: str, every: bool = False) -> Iterator[dict[str, str]]:
    """The rows of the first Markdown table whose first header cell is `first_header` (of
    every such table with `every`)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_header:
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                values = [c.strip() for c in row.strip().strip("|").split("|")]
                yield dict(zip(_unique(cells), values, strict=False))
            if not every:
                return


def _unique(names: list[str]) -> list[str]:
    """Header cells made unique ("ratio", "ratio 2", ...) so that no column is lost."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} {seen[name]}")
    return out


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def speed_series(reports: Path) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """framework -> tool -> [(n, milliseconds)], from the three speed reports."""
    series: dict[str, dict[str, list[tuple[float, float]]]] = {}
    torch_md = reports / "torch.md"
    if torch_md.exists():
        tools = {"gc full": "gc full", "gc fast": "gc fast", "torch slow": "torch slow"}
        tools |= {"torch fast": "torch fast", "torch fast+fwd": "torch fast+fwd"}
        series["PyTorch"] = _collect(table_rows(torch_md.read_text(), "case"), tools)
    jax_md = reports / "jax.md"
    if jax_md.exists():
        rows = [r for r in table_rows(jax_md.read_text(), "case") if r["check"] == "order 1, rev"]
        tools = {"gc full": "gc full", "gc fast": "gc fast", "check_grads": "check_grads (rev)"}
        series["JAX (order 1)"] = _collect(iter(rows), tools)
    tf_md = reports / "tensorflow.md"
    if tf_md.exists():
        tools = {"gc full": "gc full", "gc fast": "gc fast", "TF": "tf compute_gradient"}
        series["TensorFlow"] = _collect(table_rows(tf_md.read_text(), "case"), tools)
    return series


def _collect(rows: Iterator[dict[str, str]], tools: dict[str, str]) -> dict[str, list[Any]]:
    out: dict[str, list[tuple[float, float]]] = {label: [] for label in tools.values()}
    for row in rows:
        n = _number(row["n"])
        for column, label in tools.items():
            value = _number(row.get(column, ""))
            if value == value:
                out[label].append((n, value))
    return {k: sorted(v) for k, v in out.items() if v}


def plot_speed(reports: Path, out: Path) -> None:
    series = speed_series(reports)
    fig, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 3.6), squeeze=False)
    for ax, (framework, tools) in zip(axes[0], series.items(), strict=True):
        for label, points in tools.items():
            style = "-o" if label.startswith("gc") else "--s"
            ax.plot(*zip(*points, strict=True), style, label=label, markersize=4)
        ax.set(xscale="log", yscale="log", xlabel="n (input coordinates)", title=framework)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("median time per check (ms)")
    fig.suptitle("Check time vs input size (tanh n = 10, 100, 1000; MLPs ~1k, ~10k)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, metadata=METADATA)
    plt.close(fig)


def plot_engine(reports: Path, out: Path) -> None:
    rows = list(table_rows((reports / "engine.md").read_text(), "function", every=True))
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    for tool, error, evals, marker in (
        ("gc.derivative", "gc rel. error", "gc evals (reported / counted)", "o"),
        ("numdifftools", "nd rel. error", "nd evals (counted)", "s"),
    ):
        xs, ys = [], []
        for r in rows:
            e = _number(r[error])
            count = _number(r[evals].split("/")[-1])
            xs.append(count)
            ys.append(e if e == e and e > 0 else 1e-17)  # NaN or exact: drawn on the floor
        ax.scatter(xs, ys, marker=marker, label=tool, alpha=0.8)
        if tool == "gc.derivative":
            for r, x, y in zip(rows, xs, ys, strict=True):
                label = (
                    f"{r['function']} (order {r['order']})" if r["order"] != "1" else r["function"]
                )
                ax.annotate(label, (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set(
        yscale="log",
        xlabel="function evaluations (counted at f)",
        ylabel="relative error vs exact (mpmath)",
        title="Finite-difference engine: error vs cost (NaN drawn at 1e-17)",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, metadata=METADATA)
    plt.close(fig)


def plot_opinfo(reports: Path, out: Path) -> bool:
    """Per-sample time against n for the three checkers; False when there are no records."""
    from opinfo import OUT, read_records, shard_files

    latest = {(r["op"], r["index"]): r for r in read_records(shard_files(OUT))}
    rows = [r for r in latest.values() if r["index"] >= 0 and r.get("n")]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    for checker, label, marker in (
        ("torch", "torch slow", "s"),
        ("full", "gc full", "o"),
        ("fast", "gc fast", "^"),
    ):
        points = [
            (r["n"], 1000 * r[checker]["seconds"])
            for r in rows
            if r[checker].get("seconds") and r[checker]["verdict"] not in ("refused", "timeout")
        ]
        # thousands of points: rasterized inside the SVG (vector axes and text, ~10x smaller)
        ax.scatter(*zip(*points, strict=True), s=4, marker=marker, alpha=0.25, rasterized=True)
        ax.plot(*binned_medians(points), "-", marker=marker, linewidth=2, label=f"{label} (median)")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="n (real input coordinates of the sample)",
        ylabel="time per check (ms)",
        title="OpInfo float64 samples: one dot per sample and checker",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, metadata=METADATA, dpi=150)
    plt.close(fig)
    return True


def binned_medians(points: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Median time in bins of n a factor 10**0.5 wide (bins with 3 points or more)."""
    import math
    import statistics

    bins: dict[int, list[tuple[float, float]]] = {}
    for n, t in points:
        bins.setdefault(math.floor(2 * math.log10(n)), []).append((n, t))
    kept = sorted((k, v) for k, v in bins.items() if len(v) >= 3)
    xs = [10 ** ((k + 0.5) / 2) for k, _ in kept]
    ys = [statistics.median(t for _, t in v) for _, v in kept]
    return xs, ys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reports", type=Path, default=REPORTS, help="where the reports are")
    parser.add_argument("--out", type=Path, default=REPORTS, help="where the SVGs go")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    plot_speed(args.reports, args.out / "speed.svg")
    plot_engine(args.reports, args.out / "engine.svg")
    drawn = ["speed.svg", "engine.svg"]
    if plot_opinfo(args.reports, args.out / "opinfo_time.svg"):
        drawn.append("opinfo_time.svg")
    print("wrote " + ", ".join(str(args.out / d) for d in drawn))
    return 0


if __name__ == "__main__":
    sys.exit(main())
