"""Verdict quality of gradient checkers, side by side: false alarms and the smallest error caught.

Every family in tests/families.py (n = 4 inputs, seeds 0-4) is checked by six tools:
gc.check, torch.autograd.gradcheck (defaults: eps=1e-6, atol=1e-5, rtol=1e-3), JAX's
check_grads (order 1, reverse mode, default eps and tolerances, x64 enabled),
tf.test.compute_gradient compared with np.allclose(rtol=1e-6, atol=1e-6) (the defaults of
tf.test.TestCase.assertAllClose), numdifftools' nd.Gradient compared with np.allclose
defaults, and PyTensor's pytensor.gradient.verify_grad (default eps and tolerances, a seeded
random projection, mode FAST_COMPILE). The NumPy function and its exact gradient are wrapped
as a custom autograd.Function / custom_vjp / custom_gradient / PyTensor Op, so every tool
checks the same numbers.

For each tool and family it measures
- false alarms: the exact gradient flagged, with float64 inputs and with float32 inputs (the
  function and gradient are then called with float32 arrays, whatever each tool makes of it);
- the smallest injected relative error delta in {1e-1, ..., 1e-9} (one entry, the largest,
  multiplied by 1 + delta; tests.families.perturb) caught on every seed, together with every
  larger delta;
- the wall time of one check (median over all its checks).
For gc.check "caught" means verdict "fail", and any verdict but "pass" on the exact gradient is
a false alarm; for the others any flag (False, AssertionError, not allclose, or an exception)
counts both ways.

Run from the repository root: `.venv/bin/python benchmarks/power.py` (writes
reports/benchmarks/power.md; a few minutes on 2 cores). `--seeds 2` for a quicker run,
`--tiny` (1 seed, 1 family) for the smoke test, `--tools gradcheck,numdifftools` for some.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import argparse
import datetime
import platform
import statistics
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import git_commit, select_engine, write_atomically  # noqa: E402

select_engine()  # --engine REV: measure a committed engine, not the work tree

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numdifftools as nd  # noqa: E402
import numpy as np  # noqa: E402
import pytensor  # noqa: E402
import pytensor.tensor as pt  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
from jax.test_util import check_grads  # noqa: E402
from pytensor.gradient import GradientError, verify_grad  # noqa: E402
from pytensor.graph.basic import Apply, Variable  # noqa: E402
from pytensor.graph.op import Op  # noqa: E402

import gradcheck as gc  # noqa: E402
from tests.families import ALL, SMOOTH, Case, perturb, target_entry  # noqa: E402

OUT = ROOT / "reports" / "benchmarks" / "power.md"
N = 4
DELTAS = tuple(10.0**-k for k in range(1, 10))
Fn = Callable[[np.ndarray], Any]


@dataclass
class Outcome:
    """One check: flagged or not, how (a verdict, an exception), and how long it took."""

    flagged: bool
    detail: str
    seconds: float


def _as(value: Any, dtype: Any) -> np.ndarray:
    return np.asarray(value, dtype=dtype)


# --- the five tools: each returns (flagged, detail) --------------------------------------------


def run_gradcheck(f: Fn, grad: Fn, x: np.ndarray, correct: bool) -> tuple[bool, str]:
    report = gc.check(f, x, grad=grad)
    flagged = report.verdict != "pass" if correct else report.verdict == "fail"
    worst = [e for c in report.checks if c.verdict == report.verdict for e in c.worst[:1]]
    if not worst:
        return flagged, report.verdict
    e, scale = worst[0], abs(worst[0].numeric) or 1.0
    return flagged, (
        f"{report.verdict}; {e.where}: analytic {e.analytic:.10g}, numeric {e.numeric:.10g},"
        f" rel. diff {e.difference / scale:.1e}, rel. tolerance {e.tolerance / scale:.1e},"
        f" rel. bound {e.bound / scale:.1e}"
    )


class _NumpyFunction(torch.autograd.Function):
    """y = f(x) by NumPy; backward: grad(x) * grad_output."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, f: Fn, grad: Fn) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.grad = grad
        return torch.as_tensor(_as(f(x.detach().numpy()), np.float64), dtype=x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        g = torch.from_numpy(_as(ctx.grad(x.detach().numpy()), np.float64)).to(x.dtype)
        return g * grad_output, None, None


def run_torch(f: Fn, grad: Fn, x: np.ndarray, correct: bool) -> tuple[bool, str]:
    t = torch.tensor(x, requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok = torch.autograd.gradcheck(
            lambda t: _NumpyFunction.apply(t, f, grad), (t,), raise_exception=False
        )
    notes = sorted({str(w.message).split(".")[0] for w in caught})
    return not ok, "; ".join(notes)


def explain_torch(f: Fn, grad: Fn, x: np.ndarray) -> str:
    """torch's own message for a flagged check (a second, untimed run that raises)."""
    t = torch.tensor(x, requires_grad=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.autograd.gradcheck(lambda t: _NumpyFunction.apply(t, f, grad), (t,))
    except Exception as e:
        return " ".join(str(e).split())[:220]
    return "(passes when re-run)"


def _jax_function(f: Fn, grad: Fn, dtype: Any) -> Callable[[Any], Any]:
    def call_f(a: Any) -> np.ndarray:
        return _as(f(np.asarray(a)), dtype)

    def call_grad(a: Any) -> np.ndarray:
        return _as(grad(np.asarray(a)), dtype)

    @jax.custom_vjp
    def fn(x: Any) -> Any:
        return jax.pure_callback(call_f, jax.ShapeDtypeStruct((), dtype), x)

    def fwd(x: Any) -> tuple[Any, Any]:
        return fn(x), x

    def bwd(x: Any, cotangent: Any) -> tuple[Any]:
        g = jax.pure_callback(call_grad, jax.ShapeDtypeStruct(x.shape, dtype), x)
        return (g * cotangent,)

    fn.defvjp(fwd, bwd)
    return fn


def run_jax(f: Fn, grad: Fn, x: np.ndarray, correct: bool) -> tuple[bool, str]:
    fn = _jax_function(f, grad, x.dtype)
    try:
        check_grads(fn, (jax.numpy.asarray(x),), order=1, modes=("rev",))
    except AssertionError as e:
        return True, "AssertionError: " + " ".join(str(e).split())[:160]
    return False, ""


def _tf_function(f: Fn, grad: Fn, dtype: Any) -> Callable[[Any], Any]:
    tf_dtype = tf.as_dtype(dtype)

    @tf.custom_gradient
    def fn(x: Any) -> Any:
        y = tf.numpy_function(lambda a: _as(f(a), dtype), [x], Tout=tf_dtype)
        y.set_shape(())

        def backward(dy: Any) -> Any:
            g = tf.numpy_function(lambda a: _as(grad(a), dtype), [x], Tout=tf_dtype)
            return dy * g

        return y, backward

    return fn


def run_tf(f: Fn, grad: Fn, x: np.ndarray, correct: bool) -> tuple[bool, str]:
    theoretical, numerical = tf.test.compute_gradient(_tf_function(f, grad, x.dtype), [x])
    a, n = np.asarray(theoretical[0]), np.asarray(numerical[0])
    close = bool(np.allclose(a, n, rtol=1e-6, atol=1e-6))
    if close:
        return False, ""
    with np.errstate(all="ignore"):
        rel = float(np.max(np.abs(a - n) / np.maximum(np.abs(n), 1e-300)))
    return True, f"max rel diff {rel:.1e}"


def run_numdifftools(f: Fn, grad: Fn, x: np.ndarray, correct: bool) -> tuple[bool, str]:
    numeric = np.asarray(nd.Gradient(f)(x))
    analytic = _as(grad(x), np.float64)
    close = bool(np.allclose(analytic, numeric))
    if close:
        return False, ""
    with np.errstate(all="ignore"):
        rel = float(np.max(np.abs(analytic - numeric) / np.maximum(np.abs(numeric), 1e-300)))
    return True, f"max rel diff {rel:.1e}"


# PyTensor compiles every function verify_grad builds. FAST_COMPILE (graph rewrites kept to a
# minimum, Python/VM linker) needs no C compiler and compiles in a fraction of the time; the
# check's arithmetic (float64 or float32, its own eps and tolerances) is the same in any mode.
PYTENSOR_MODE = "FAST_COMPILE"


class _NumpyGradOp(Op):  # type: ignore[misc]
    """grad(x) computed by NumPy, as a PyTensor Op (the gradient the check is handed)."""

    def __init__(self, grad: Fn) -> None:
        self.grad_fn = grad

    def make_node(self, x: Any) -> Apply:
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node: Apply, inputs: list[Any], outputs: list[list[Any]]) -> None:
        dtype = node.outputs[0].dtype
        outputs[0][0] = _as(self.grad_fn(np.asarray(inputs[0], dtype=dtype)), dtype)


class _NumpyOp(Op):  # type: ignore[misc]
    """y = f(x) by NumPy as a PyTensor Op whose pullback is grad(x) * cotangent: the same
    wrapping as the custom Function / custom_vjp / custom_gradient of the other anchors, so
    that verify_grad checks the same numbers (and the injected error) they check."""

    def __init__(self, f: Fn, grad: Fn) -> None:
        self.f = f
        self.grad_op = _NumpyGradOp(grad)

    def make_node(self, x: Any) -> Apply:
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [pt.TensorType(x.dtype, shape=())()])

    def perform(self, node: Apply, inputs: list[Any], outputs: list[list[Any]]) -> None:
        dtype = node.outputs[0].dtype
        outputs[0][0] = _as(self.f(np.asarray(inputs[0], dtype=dtype)), dtype)

    def pullback(
        self, inputs: list[Variable], outputs: list[Variable], cotangents: list[Variable]
    ) -> list[Variable]:
        return [cotangents[0] * self.grad_op(inputs[0])]


def run_pytensor(f: Fn, grad: Fn, x: np.ndarray, correct: bool) -> tuple[bool, str]:
    try:
        verify_grad(_NumpyOp(f, grad), [x], rng=np.random.default_rng(0), mode=PYTENSOR_MODE)
    except GradientError as e:  # the check's own finding (anything else is a crash: flagged)
        return True, " ".join(str(e).split())[:220]  # its text starts "GradientError: ..."
    return False, ""


def gc_float32_dtypes() -> str:
    """Which dtypes gc.check hands to f and grad when the input is float32."""
    seen: set[str] = set()

    def f(x: np.ndarray) -> Any:
        seen.add(f"f: {x.dtype}")
        return np.sum(np.sin(x))

    def grad(x: np.ndarray) -> Any:
        seen.add(f"grad: {x.dtype}")
        return np.cos(x)

    gc.check(f, np.array([0.5, 1.5], dtype=np.float32), grad=grad)
    return ", ".join(sorted(seen))


@dataclass(frozen=True)
class Tool:
    name: str
    run: Callable[[Fn, Fn, np.ndarray, bool], tuple[bool, str]]
    float32: str  # what float32 inputs mean for this tool
    explain: Callable[[Fn, Fn, np.ndarray], str] | None = None  # untimed, for flagged checks


TOOLS = (
    Tool("gradcheck", run_gradcheck, "float32 arrays passed to gc.check"),
    Tool(
        "torch.autograd.gradcheck",
        run_torch,
        "float32 tensors (torch warns that the check will likely fail, then runs)",
        explain_torch,
    ),
    Tool("jax check_grads", run_jax, "float32 arrays (float32 tolerances, eps=1e-4 in float32)"),
    Tool("tf compute_gradient", run_tf, "float32 tensors (delta = 1/1024 in float32)"),
    Tool("numdifftools", run_numdifftools, "float32 arrays passed to nd.Gradient"),
    Tool(
        "pytensor verify_grad",
        run_pytensor,
        "float32 arrays: a float32 graph (verify_grad's float32 eps 3e-4 and tolerance 1e-2)",
    ),
)


# --- measurement -------------------------------------------------------------------------------


@dataclass
class FamilyResult:
    family: str
    seeds: int
    false64: list[tuple[int, str]] = field(default_factory=list)  # (seed, detail)
    false32: list[tuple[int, str]] = field(default_factory=list)
    caught: dict[float, list[bool]] = field(default_factory=dict)  # delta -> per seed
    verdicts: Counter[str] = field(default_factory=Counter)  # first word of every detail
    said: dict[tuple[float, int], str] = field(default_factory=dict)  # (delta, seed) -> detail
    missed: dict[float, list[tuple[int, str]]] = field(default_factory=dict)

    def smallest(self) -> float | None:
        """The smallest delta caught on every seed, with every larger delta too."""
        best = None
        for delta in DELTAS:
            if not all(self.caught[delta]):
                break
            best = delta
        return best

    def non_monotone(self) -> list[float]:
        """Deltas caught on every seed below a larger delta that was not."""
        s = self.smallest()
        return [d for d in DELTAS if (s is None or d < s) and all(self.caught[d])]


def one(tool: Tool, f: Fn, grad: Fn, x: np.ndarray, correct: bool, times: list[float]) -> Outcome:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numdifftools' All-NaN warnings and the like
        start = time.perf_counter()
        try:
            flagged, detail = tool.run(f, grad, x, correct)
        except Exception as e:  # a crash on a check is a flag too, and is reported
            flagged, detail = True, f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"
        seconds = time.perf_counter() - start
        if flagged and tool.explain is not None:
            detail = "; ".join(filter(None, (detail, tool.explain(f, grad, x))))
    times.append(seconds)
    return Outcome(flagged, detail, seconds)


def measure(
    tool: Tool, families: tuple[Any, ...], seeds: int
) -> tuple[list[FamilyResult], list[float]]:
    results = []
    times: list[float] = []
    for family in families:
        r = FamilyResult(family.__name__, seeds, caught={d: [] for d in DELTAS})
        for seed in range(seeds):
            with np.errstate(all="ignore"):
                case: Case = family(np.random.default_rng(seed), N)
            o = one(tool, case.f, case.grad, case.x, True, times)
            r.verdicts[o.detail.split(";")[0]] += 1
            if o.flagged:
                r.false64.append((seed, o.detail))
            o = one(tool, case.f, case.grad, case.x.astype(np.float32), True, times)
            r.verdicts[o.detail.split(";")[0]] += 1
            if o.flagged:
                r.false32.append((seed, o.detail))
            index = target_entry(case)
            for delta in DELTAS:
                o = one(tool, case.f, perturb(case.grad, index, delta), case.x, False, times)
                r.verdicts[o.detail.split(";")[0]] += 1
                r.caught[delta].append(o.flagged)
                r.said[delta, seed] = o.detail
                if not o.flagged:
                    r.missed.setdefault(delta, []).append((seed, o.detail))
        results.append(r)
        print(
            f"  {tool.name:26s} {r.family:18s} fa64 {len(r.false64)} fa32 {len(r.false32)}"
            f" smallest {r.smallest()}",
            flush=True,
        )
    return results, times


# --- report ------------------------------------------------------------------------------------


def fmt_delta(d: float | None) -> str:
    return "none" if d is None else f"1e-{round(-np.log10(d))}"


def summary_delta(results: list[FamilyResult], names: set[str], skip_alarmed: bool) -> str:
    """Median smallest delta over `names`; 'none' counts as 1, and so does † (a float64 false
    alarm) unless such families are left out altogether (`skip_alarmed`)."""
    values = [
        1.0 if r.false64 else (r.smallest() or 1.0)
        for r in results
        if r.family in names and not (skip_alarmed and r.false64)
    ]
    if not values:
        return "-"
    med = float(np.exp(statistics.median(np.log(values))))
    return f"{med:.0e}".replace("e-0", "e-").replace("e+00", "")


def family_rows(results: list[FamilyResult]) -> list[str]:
    rows = [
        "| family | false alarms float64 | false alarms float32 | smallest delta caught"
        " (all seeds) | notes |",
        "|---|---:|---:|---:|---|",
    ]
    for r in results:
        notes = []
        if r.false64:
            notes.append("flags the exact gradient, so catches are not evidence")
        nm = r.non_monotone()
        if nm:
            notes.append("also caught on all seeds: " + ", ".join(fmt_delta(d) for d in nm))
        rows.append(
            f"| {r.family} | {len(r.false64)}/{r.seeds} | {len(r.false32)}/{r.seeds} |"
            f" {fmt_delta(r.smallest())}{' †' if r.false64 else ''} | {'; '.join(notes)} |"
        )
    return rows


def details(tool: Tool, results: list[FamilyResult], every: bool) -> list[str]:
    """False alarms and misses at the first delta not caught on every seed.

    With `every`, each seed's detail; otherwise the first one as an example.
    """
    lines = []

    def listed(items: list[tuple[int, str]]) -> str:
        seeds = ", ".join(str(seed) for seed, _ in items)
        shown = items if every else items[:1]
        examples = "; ".join(f"seed {seed}: {d}" for seed, d in shown if d)
        return f"seed(s) {seeds}" + (f" — {examples}" if examples else "")

    for r in results:
        for kind, alarms in (("float64", r.false64), ("float32", r.false32)):
            if alarms:
                lines.append(f"- {r.family}: exact gradient flagged, {kind}, {listed(alarms)}")
        s = r.smallest()
        nxt = DELTAS[0] if s is None else (DELTAS[DELTAS.index(s) + 1] if s != DELTAS[-1] else None)
        if nxt is not None and nxt in r.missed:
            lines.append(f"- {r.family}: delta {fmt_delta(nxt)} missed on {listed(r.missed[nxt])}")
    return lines or ["- none"]


def beaten(
    ours: list[FamilyResult], others: list[tuple[Tool, list[FamilyResult], list[float]]]
) -> list[str]:
    """(tool, family, seed, delta) where another tool flags the wrong gradient, passes the
    exact one (float64, same seed), and gc.check does not say "fail"."""
    lines = []
    for tool, results, _ in others:
        for mine, theirs in zip(ours, results, strict=True):
            alarmed = {seed for seed, _ in theirs.false64}
            for delta in DELTAS:
                for seed in range(theirs.seeds):
                    if (
                        theirs.caught[delta][seed]
                        and seed not in alarmed
                        and not mine.caught[delta][seed]
                    ):
                        lines.append(
                            f"- {tool.name}, {mine.family}, seed {seed}, delta"
                            f" {fmt_delta(delta)}: {tool.name} said"
                            f" {theirs.said[delta, seed] or 'flagged'}; gradcheck said"
                            f" {mine.said[delta, seed]}. ({tool.name} flags the exact gradient"
                            f" of this family on {len(alarmed)}/{theirs.seeds} seeds in float64.)"
                        )
    return lines


def render(
    measured: list[tuple[Tool, list[FamilyResult], list[float]]], seeds: int, wall: float
) -> str:
    smooth = {f.__name__ for f in SMOOTH}
    every = {f.__name__ for f in ALL}
    float32_seen = gc_float32_dtypes()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Verdict quality: gradcheck vs torch, JAX, TensorFlow, numdifftools and PyTensor",
        "",
        f"Generated by `benchmarks/power.py` on {date}: {platform.machine()},"
        f" {os.cpu_count()} CPU cores, Python {platform.python_version()}, NumPy"
        f" {np.__version__}, torch {torch.__version__}, JAX {jax.__version__}, TensorFlow"
        f" {tf.__version__}, numdifftools {nd.__version__}, PyTensor {pytensor.__version__};"
        f" gradcheck engine `{git_commit()}`. Whole run: {wall / 60:.1f} min (the machine is"
        " shared: times are indicative).",
        "",
        f"Each family of `tests/families.py` is drawn with n = {N} inputs for seeds 0-{seeds - 1}"
        f" ({seeds} seeds for every tool). The NumPy function and its exact gradient are wrapped"
        " for each framework (a custom `torch.autograd.Function`, a `jax.custom_vjp` over"
        " `jax.pure_callback`, a `tf.custom_gradient` over `tf.numpy_function`, a PyTensor `Op`"
        " with a `pullback`), so every tool"
        " checks the same numbers. Tool settings: gc.check defaults; torch gradcheck defaults"
        " (eps=1e-6, atol=1e-5, rtol=1e-3, float64 tensors); JAX `check_grads(order=1,"
        " modes=('rev',))` with default eps and tolerances, x64 enabled; TF"
        " `tf.test.compute_gradient` with `np.allclose(theoretical, numerical, rtol=1e-6,"
        " atol=1e-6)` (assertAllClose defaults); numdifftools `np.allclose(grad(x),"
        " nd.Gradient(f)(x))` with np.allclose defaults (rtol=1e-5, atol=1e-8); PyTensor"
        f" {pytensor.__version__} `verify_grad(op, [x], rng=np.random.default_rng(0),"
        f" mode={PYTENSOR_MODE!r})` on a PyTensor Op wrapping the same function and gradient,"
        " with its defaults (one-sided eps 1e-7 in float64, 3e-4 in float32; abs and rel"
        " tolerance 1e-4 in float64, 1e-2 in float32; two random projections of the output).",
        "",
        "- **false alarms**: the exact gradient flagged (for gc.check: any verdict but `pass`),"
        " with float64 inputs and with float32 inputs. In float32, exp_overflow's function and"
        " gradient overflow to inf (exp(690..705) is far beyond the float32 range), so a flag"
        " there is deserved by the tools that evaluate them in float32;",
        "- **smallest delta**: the smallest relative error delta in {1e-1, ..., 1e-9}, injected in"
        " the largest gradient entry, caught on every seed together with every larger delta"
        " (for gc.check: verdict `fail`). `none`: 1e-1 is not caught on every seed. † marks a"
        " family where the tool also flags the exact gradient (float64) on some seed, so its"
        " catches say nothing; the summary medians count both `none` and † as 1 (nothing"
        " caught);",
        "- **time**: median wall time of one check (all checks of the tool: exact and perturbed,"
        " float64 and float32), torch with 1 thread; the machine may be shared with other jobs,"
        " so times are indicative.",
        "",
        "## Summary",
        "",
        "| tool | false alarms float64 | false alarms float32 | median smallest delta, 11"
        " smooth families († = none) | same, † families left out | median smallest delta, all"
        " 12 († = none) | families caught at 1e-7 | median time per check |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    total = len(ALL) * seeds
    for tool, results, times in measured:
        alarmed = {r.family for r in results if r.false64}
        fa64 = sum(len(r.false64) for r in results)
        fa32 = sum(len(r.false32) for r in results)
        at7 = sum(
            1
            for r in results
            if r.smallest() is not None and r.smallest() <= 1e-7 and not r.false64
        )
        lines.append(
            f"| {tool.name} | {fa64}/{total} | {fa32}/{total} |"
            f" {summary_delta(results, smooth, False)} |"
            f" {summary_delta(results, smooth, True)} ({len(smooth - alarmed)}) |"
            f" {summary_delta(results, every, False)} | {at7}/{len(results)} |"
            f" {1e3 * statistics.median(times):.1f} ms |"
        )
    gc_results = measured[0][1]
    lost = beaten(gc_results, measured[1:])
    lines += [
        "",
        "Medians are geometric (an even count gives a value between two decades); the number in"
        " brackets is how many of the 11 smooth families are left once those with a float64 false"
        " alarm are left out. 'families caught at 1e-7' counts families whose smallest delta is"
        " 1e-7 or below without a float64 false alarm.",
        "",
        "### Where another tool catches what gradcheck misses",
        "",
        "Every (tool, family, seed, delta) where another tool flags the wrong gradient while"
        " passing the exact gradient of the same seed (float64) and gc.check does not return"
        " `fail`:",
        "",
        *(lost or ["- none."]),
    ]
    for tool, results, _ in measured:
        lines += ["", f"## {tool.name}", "", f"float32 inputs: {tool.float32}.", ""]
        if tool.name == "gradcheck":
            lines[-2:] = [
                f"float32 inputs: {tool.float32}. gc.check calls the NumPy function and gradient"
                f" with float64 copies of float32 inputs (measured in this run: {float32_seen}),"
                " so for NumPy code its float32 column measures the same thing as float64; the"
                " other tools call them with float32 arrays.",
                "",
            ]
        lines += family_rows(results)
        if tool.name == "gradcheck":
            tally = Counter[str]()
            for r in results:
                tally.update(r.verdicts)
            lines += [
                "",
                f"Verdicts over all {tally.total()} checks: "
                + ", ".join(f"{v} {k}" for k, v in tally.most_common())
                + ".",
            ]
        lines += [
            "",
            "False alarms, and misses at the first delta not caught on every seed"
            + (" (every seed's evidence):" if tool.name == "gradcheck" else " (one example):"),
            "",
        ]
        lines += details(tool, results, every=tool.name == "gradcheck")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per family (default 5)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--tools", type=lambda s: s.split(","), help="comma-separated tool names (default all)"
    )
    parser.add_argument("--tiny", action="store_true", help="1 seed, 1 family: a smoke test")
    parser.add_argument("--engine", metavar="REV", help="measure gradcheck as committed at REV")
    args = parser.parse_args(argv)
    families = ALL[:1] if args.tiny else ALL
    seeds = 1 if args.tiny else args.seeds
    tools = [t for t in TOOLS if args.tools is None or t.name in args.tools]
    torch.set_num_threads(1)
    start = time.perf_counter()
    measured = []
    for tool in tools:
        t0 = time.perf_counter()
        results, times = measure(tool, families, seeds)
        print(f"{tool.name}: {time.perf_counter() - t0:.0f} s", flush=True)
        measured.append((tool, results, times))
    write_atomically(args.out, render(measured, seeds, time.perf_counter() - start))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
