"""The finite-difference engine alone against numdifftools, on derivatives with known values.

Two sets of scalar functions with exact derivatives:
- f(x) = log(x + 2) at x = 1, derivative orders 1 to 4 (exact 1/3, -1/9, 2/27, -6/81);
- first derivatives in the regimes that break fixed-step rules: sin(1e5·x) at x = 1e-5,
  cos(x/1e5) at x = 1e5, log(x) at x = 1e-3, exp(x) at x = 700 and 1e8 + sin(x) at x = 1.

For `gc.derivative(f, x, order=q)` and `nd.Derivative(f, n=q, full_output=True)(x)` (default
settings) it reports, against exact values computed with mpmath at the float64 point, the
relative error |value - exact|/|exact|, the tool's own error estimate relative to |exact|,
whether that estimate covers the true error, and the number of function evaluations: the count
gc reports (f(x) excluded) and, for both tools, the number of points at which f was actually
called, counted by a wrapper (f(x) included).

Run from the repository root: `.venv/bin/python benchmarks/engine_accuracy.py` (writes
reports/benchmarks/engine.md; a few seconds). `--engine REV` measures the engine as committed at
REV instead of the work tree.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mpmath  # a dependency of torch and sympy: exact reference values
import numdifftools as nd
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import git_commit, select_engine, write_atomically  # noqa: E402

select_engine()  # --engine REV: measure a committed engine, not the work tree

import gradcheck as gc  # noqa: E402

OUT = ROOT / "reports" / "benchmarks" / "engine.md"
Scalar = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Problem:
    name: str
    f: Scalar
    x: float
    order: int
    exact: float


def _log2(x: np.ndarray) -> np.ndarray:
    return np.log(x + 2)


def _exact(fn: Callable[[mpmath.mpf], mpmath.mpf], x: float) -> float:
    """A derivative evaluated in 40-digit arithmetic at the float64 point itself."""
    with mpmath.workdps(40):
        return float(fn(mpmath.mpf(x)))


PROBLEMS = (
    *(
        Problem(
            "log(x+2)",
            _log2,
            1.0,
            q,
            _exact(lambda t, q=q: (-1) ** (q - 1) * mpmath.factorial(q - 1) / (t + 2) ** q, 1.0),
        )
        for q in (1, 2, 3, 4)
    ),
    Problem(
        "sin(1e5·x)",
        lambda x: np.sin(1e5 * x),
        1e-5,
        1,
        _exact(lambda t: 10**5 * mpmath.cos(10**5 * t), 1e-5),
    ),
    Problem(
        "cos(x/1e5)",
        lambda x: np.cos(x / 1e5),
        1e5,
        1,
        _exact(lambda t: -mpmath.sin(t / 10**5) / 10**5, 1e5),
    ),
    Problem("log(x)", np.log, 1e-3, 1, _exact(lambda t: 1 / t, 1e-3)),
    Problem("exp(x)", np.exp, 700.0, 1, _exact(mpmath.exp, 700.0)),
    Problem("1e8 + sin(x)", lambda x: 1e8 + np.sin(x), 1.0, 1, _exact(mpmath.cos, 1.0)),
)


class Counter:
    """Wraps f and counts the points it is evaluated at (a vectorised call counts each)."""

    def __init__(self, f: Scalar) -> None:
        self.f = f
        self.points = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.points += int(np.size(x))
        return self.f(x)


@dataclass(frozen=True)
class Result:
    value: float
    estimate: float  # absolute error estimate reported by the tool
    reported: int | None  # evaluations the tool reports
    counted: int  # points f was called at
    note: str = ""

    def rel_error(self, exact: float) -> float:
        return abs(self.value - exact) / abs(exact)

    def rel_estimate(self, exact: float) -> float:
        return self.estimate / abs(exact)

    def covers(self, exact: float) -> bool:
        return bool(abs(self.value - exact) <= self.estimate)


def run_gc(p: Problem) -> Result:
    f = Counter(p.f)
    with np.errstate(all="ignore"):
        d = gc.derivative(f, p.x, order=p.order)
    return Result(float(d.value), float(d.error), int(d.evaluations), f.points)


def run_nd(p: Problem) -> Result:
    f = Counter(p.f)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # All-NaN slices where the ladder leaves the domain
        r = nd.Derivative(f, n=p.order, full_output=True)(p.x)
    value, info = (r.estimate, r) if hasattr(r, "estimate") else r  # 0.11: EstimateResult
    return Result(float(np.squeeze(value)), float(np.squeeze(info.error_estimate)), None, f.points)


def fmt(v: float) -> str:
    if not np.isfinite(v):
        return str(v)
    return "0" if v == 0 else f"{v:.1e}"


def table(rows: list[tuple[Problem, Result, Result]], title: str) -> list[str]:
    lines = [
        f"### {title}",
        "",
        "| function | x | order | exact | gc rel. error | gc estimate | covers | gc evals"
        " (reported / counted) | nd rel. error | nd estimate | covers | nd evals (counted) |",
        "|---|---:|---:|---:|---:|---:|:---:|---:|---:|---:|:---:|---:|",
    ]
    for p, ours, theirs in rows:
        lines.append(
            f"| {p.name} | {p.x:g} | {p.order} | {p.exact:.10g} |"
            f" {fmt(ours.rel_error(p.exact))} | {fmt(ours.rel_estimate(p.exact))} |"
            f" {'yes' if ours.covers(p.exact) else '**no**'} | {ours.reported} / {ours.counted} |"
            f" {fmt(theirs.rel_error(p.exact))} | {fmt(theirs.rel_estimate(p.exact))} |"
            f" {'yes' if theirs.covers(p.exact) else '**no**'} | {theirs.counted} |"
        )
    return lines


def label(p: Problem) -> str:
    """The problem's name, with its order where the same function has several."""
    return f"{p.name} (order {p.order})" if sum(q.name == p.name for q in PROBLEMS) > 1 else p.name


def summary(rows: list[tuple[Problem, Result, Result]]) -> str:
    n = len(rows)
    tools = {"gc": [(p, a) for p, a, _ in rows], "nd": [(p, b) for p, _, b in rows]}
    names = {"gc": "gc.derivative", "nd": "numdifftools"}
    possessive = {"gc": "gc.derivative's", "nd": "numdifftools'"}
    parts = []
    for k, v in tools.items():
        errors = [r.rel_error(p.exact) for p, r in v]
        finite = [e for e in errors if np.isfinite(e)]
        bad = [
            f"{label(p)} at x = {p.x:g}: {fmt(r.rel_error(p.exact))}"
            for p, r in v
            if not r.rel_error(p.exact) < 1e-3
        ]
        parts.append(
            f"{possessive[k]} relative error is {fmt(min(finite))} to {fmt(max(finite))} (median"
            f" {fmt(float(np.median(np.nan_to_num(errors, nan=np.inf))))})"
            + (f", and it is wrong or NaN on {'; '.join(bad)}" if bad else "")
        )
    text = f"Over the {n} problems " + "; ".join(parts) + "."
    better = [
        f"{label(p)}: {fmt(b.rel_error(p.exact))} vs {fmt(a.rel_error(p.exact))}"
        + (
            " (both within their error estimates)"
            if a.covers(p.exact) and b.covers(p.exact)
            else ""
        )
        for p, a, b in rows
        if b.rel_error(p.exact) < a.rel_error(p.exact)
    ]
    if better:
        text += " numdifftools is more accurate (its error vs gc's) on " + "; ".join(better) + "."
    covered = {k: sum(r.covers(p.exact) for p, r in v) for k, v in tools.items()}
    text += (
        f" The error estimate covers the true error on {covered['gc']}/{n} problems for"
        f" gc.derivative and {covered['nd']}/{n} for numdifftools"
    )
    missed = [label(p) for p, r in tools["nd"] if not r.covers(p.exact)]
    if missed:
        text += " (not covered: " + ", ".join(missed) + ")"
    evals = {k: [r.counted for _, r in v] for k, v in tools.items()}
    text += (
        ". Evaluations counted at the function (f(x) included): "
        + ", ".join(
            f"{names[k]} {min(evals[k])}-{max(evals[k])} (median {int(np.median(evals[k]))})"
            for k in tools
        )
        + "."
    )
    return text


def render(rows: list[tuple[Problem, Result, Result]]) -> str:
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Finite-difference engine: gc.derivative vs numdifftools",
        "",
        f"Generated by `benchmarks/engine_accuracy.py` on {date}: {platform.machine()},"
        f" {os.cpu_count()} CPU cores, Python {platform.python_version()}, NumPy"
        f" {np.__version__}, numdifftools {nd.__version__}; gradcheck engine `{git_commit()}`."
        " Both tools with default settings:"
        " `gc.derivative(f, x, order=q)` and `nd.Derivative(f, n=q, full_output=True)(x)`.",
        "",
        "Columns: relative error |value - exact| / |exact|; the tool's own error estimate"
        " divided by |exact| (gc: `d.error`; numdifftools: `error_estimate`); *covers* = the"
        " estimate is at least the true error; evaluations: gc's reported `d.evaluations` (f(x)"
        " excluded) and, for both tools, the points at which f was actually called (counted by a"
        " wrapper, f(x) included). Exact values are computed with mpmath (40 digits) at the float64"
        " point itself.",
        "",
    ]
    lines += table(rows[:4], "log(x + 2) at x = 1, orders 1 to 4")
    lines += [""]
    lines += table(rows[4:], "First derivatives in hard regimes")
    lines += ["", "## Summary", "", summary(rows), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--engine", metavar="REV", help="measure gradcheck as committed at REV")
    args = parser.parse_args(argv)
    rows = [(p, run_gc(p), run_nd(p)) for p in PROBLEMS]
    for p, a, b in rows:
        print(
            f"{p.name:14s} x={p.x:<8g} q={p.order} gc err {a.rel_error(p.exact):.1e}"
            f" est {a.rel_estimate(p.exact):.1e} n={a.counted} | nd err"
            f" {b.rel_error(p.exact):.1e} est {b.rel_estimate(p.exact):.1e} n={b.counted}"
        )
    write_atomically(args.out, render(rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
