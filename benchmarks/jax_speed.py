"""gc.check against jax.test_util.check_grads, side by side, on the same functions and inputs.

Cases: f(x) = sum(tanh(W x + b)^2) w.r.t. x for n = 10, 100, 1000, and the loss of a tanh MLP
w.r.t. all of its parameters (a dict pytree, ~1k and ~10k entries). check_grads is timed as
order 1 reverse mode, order 1 forward+reverse, and order 2 (forward+reverse); gc.check as
order 1 (which always checks reverse, forward and their adjoint consistency) and order 2, in
mode="full" and "fast". The table gives medians and the ratio ours/theirs (below 1 means
gradcheck is faster). Both get the same float64 inputs; check_grads runs under a scoped
`jax.enable_x64(True)` (its most accurate setting), gc.check scopes x64 itself. gc.check
compiles its functions with XLA on the first check of a function and reuses the programs for
later checks of the same function object with inputs of the same shapes (as `jax.jit` does),
so the warm times are of reused programs, and "fresh inputs" times the hypothesis pattern:
one function checked again and again at new points.

Run: `.venv/bin/python benchmarks/jax_speed.py` (writes reports/benchmarks/jax.md; a few
minutes on 2 cores). `--quick` runs every case once, for a smoke test.
"""

from __future__ import annotations

import itertools
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from _common import REPORTS, publish, speed_arguments, speed_cases
from jax.test_util import check_grads

import gradcheck as gc

OUT = REPORTS / "jax.md"
SLOW = 5.0  # seconds: a configuration this slow is timed once, not repeated
FULL_HESSIAN_MAX = 1000  # order 2 in full mode compares n^2 entries: not run beyond this


def timed(run: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Median wall time of `repeats` runs after a first (cold) run, that first time, and the
    last result; a configuration slower than SLOW is timed once (median = first)."""
    start = time.perf_counter()
    result = run()
    first = time.perf_counter() - start
    if first > SLOW:
        return first, first, result
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), first, result


def _f64(values: np.ndarray) -> Any:
    with jax.enable_x64(True):
        return jnp.asarray(values, dtype=jnp.float64)


def tanh_case(n: int) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """f(x) = sum(tanh(Wx + b)^2) with fixed W (n x n) and b; checked w.r.t. x."""
    rng = np.random.default_rng(n)
    w = _f64(rng.standard_normal((n, n)) / n**0.5)
    b = _f64(rng.standard_normal(n))

    def f(x: Any) -> Any:
        return jnp.sum(jnp.tanh(w @ x + b) ** 2)

    return f, (_f64(rng.standard_normal(n)),)


def mlp_case(widths: tuple[int, ...]) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """A tanh MLP's squared-output loss as a function of its parameter dict."""
    rng = np.random.default_rng(sum(widths))
    params = {
        f"layer{i}": {
            "w": _f64(rng.standard_normal((a, b)) / a**0.5),
            "b": _f64(rng.standard_normal(b) * 0.1),
        }
        for i, (a, b) in enumerate(itertools.pairwise(widths))
    }
    x = _f64(rng.standard_normal((8, widths[0])))
    last = len(widths) - 2

    def loss(params: dict[str, Any]) -> Any:
        h = x
        for i in range(last + 1):
            h = h @ params[f"layer{i}"]["w"] + params[f"layer{i}"]["b"]
            if i < last:
                h = jnp.tanh(h)
        return jnp.mean(h**2)

    return loss, (params,)


def theirs(
    fn: Callable[..., Any], inputs: tuple[Any, ...], order: int, modes: tuple[str, ...]
) -> bool:
    with jax.enable_x64(True):
        try:
            check_grads(fn, inputs, order, modes=modes)
        except AssertionError:
            return False
    return True


def perturbed(fn: Callable[[Any], Any], delta: float) -> Callable[[Any], Any]:
    """fn with a custom_vjp whose gradient is off by a relative `delta` in entry 1."""

    @jax.custom_vjp
    def wrapped(x: Any) -> Any:
        return fn(x)

    def bwd(x: Any, g: Any) -> tuple[Any]:
        return (jax.vjp(fn, x)[1](g)[0].at[1].multiply(1 + delta),)

    wrapped.defvjp(lambda x: (fn(x), x), bwd)
    return wrapped


def new_object(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The same function as a new object: gc.check caches compiled programs per function
    object, so a configuration timed on a new one starts cold, as a new test would."""

    def again(*args: Any) -> Any:
        return fn(*args)

    return again


def fresh_inputs(inputs: tuple[Any, ...], count: int, seed: int) -> list[tuple[Any, ...]]:
    """`count` new points of the same shapes and dtypes: inputs plus a random perturbation."""
    rng = np.random.default_rng(seed)

    def moved(leaf: Any) -> Any:
        return _f64(np.asarray(leaf) + 0.1 * rng.standard_normal(np.shape(leaf)))

    return [jax.tree_util.tree_map(moved, inputs) for _ in range(count)]


def repeated(name: str, fn: Callable[..., Any], inputs: tuple[Any, ...], count: int) -> str:
    """One table row: median time of a check of `fn` at each of `count` fresh points, after
    a first check at `inputs` (the cold one), for check_grads (order 1, fwd+rev) and gc."""
    points = fresh_inputs(inputs, count, seed=count)

    def median(check: Callable[[tuple[Any, ...]], Any]) -> tuple[float, Any]:
        check(inputs)
        times, result = [], None
        for point in points:
            start = time.perf_counter()
            result = check(point)
            times.append(time.perf_counter() - start)
        return statistics.median(times), result

    t_theirs, ok = median(lambda a: theirs(fn, a, 1, ("fwd", "rev")))
    fast_fn, full_fn = new_object(fn), new_object(fn)
    t_fast, fast = median(lambda a: gc.check(fast_fn, *a, mode="fast"))
    t_full, full = median(lambda a: gc.check(full_fn, *a, mode="full"))
    n = sum(leaf.size for leaf in jax.tree_util.tree_leaves(inputs))
    return (
        f"| {name} | {n} | {1000 * t_theirs:.1f} | {1000 * t_fast:.1f} | {t_fast / t_theirs:.2f} "
        f"| {1000 * t_full:.1f} | {t_full / t_theirs:.2f} | {fast.verdict}/{full.verdict} "
        f"(check_grads: {'pass' if ok else 'fail'}) |"
    )


def repeated_table(cases: list[tuple[str, Callable[..., Any], tuple[Any, ...], int]]) -> list[str]:
    """The hypothesis pattern: each case's function checked at new points of the same shapes."""
    lines = [
        "",
        "## Fresh inputs (one function, checked again at new points)",
        "",
        "What a hypothesis test or a parametrised test does: the same function object checked "
        "at new inputs of the same shapes. Median over the new points, after a first check at "
        "the case's own inputs; check_grads at order 1 with modes fwd+rev against gc.check at "
        "order 1 (reverse, forward and their adjoint consistency). The speed issue's target: gc "
        "fast within 3x of check_grads.",
        "",
        "| case | n | check_grads | gc fast | ratio | gc full | ratio | verdicts |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, fn, inputs, repeats in cases:
        lines.append(repeated(name, fn, inputs, max(repeats, 3)))
        print(lines[-1], flush=True)
    return lines


def power() -> list[str]:
    """Which tool notices a gradient that is wrong by a relative delta in one entry."""
    fn, (x,) = tanh_case(100)
    lines = [
        "",
        "## Power (same case, a wrong gradient)",
        "",
        "f(x) = sum(tanh(Wx + b)^2), n = 100, with a custom_vjp whose gradient is "
        "multiplied by (1 + delta) in one entry; reverse mode, order 1.",
        "",
        "| delta | check_grads | gc full | gc fast |",
        "|---|---|---|---|",
    ]
    for delta in (1e-3, 1e-4, 1e-6):
        wrong = perturbed(fn, delta)
        caught = not theirs(wrong, (x,), 1, ("rev",))
        full, fast = (gc.check(wrong, x, mode=m).verdict for m in ("full", "fast"))
        lines.append(
            f"| {delta:g} | {'caught' if caught else 'missed'} | "
            f"{'caught' if full == 'fail' else 'missed: ' + full} | "
            f"{'caught' if fast == 'fail' else 'missed: ' + fast} |"
        )
    return lines


def run(quick: bool, tiny: bool = False) -> str:
    cases = [
        (name, *(tanh_case(size) if kind == "tanh" else mlp_case(size)), repeats)
        for name, kind, size, repeats in speed_cases(tiny)
    ]
    rows = []
    for name, fn, inputs, repeats in cases:
        repeats = 1 if quick else repeats
        n = sum(leaf.size for leaf in jax.tree_util.tree_leaves(inputs))
        ours: dict[tuple[int, str], tuple[float, float, str]] = {}
        for order in (1, 2):
            for mode in ("full", "fast"):
                if order == 2 and mode == "full" and n > FULL_HESSIAN_MAX:
                    ours[order, mode] = (float("nan"), float("nan"), "not run")
                    continue
                checked = new_object(fn)
                t, cold, report = timed(
                    lambda o=order, m=mode, f=checked, a=inputs: gc.check(f, *a, order=o, mode=m),
                    repeats,
                )
                ours[order, mode] = (t, cold, report.verdict)
        for label, order, modes in (
            ("order 1, rev", 1, ("rev",)),
            ("order 1, fwd+rev", 1, ("fwd", "rev")),
            ("order 2, fwd+rev", 2, ("fwd", "rev")),
        ):
            t, cold, ok = timed(
                lambda o=order, ms=modes, f=fn, a=inputs: theirs(f, a, o, ms), repeats
            )
            row = {
                "name": name,
                "n": n,
                "check": label,
                "theirs": t,
                "theirs_cold": cold,
                "theirs_ok": ok,
                "full": ours[order, "full"],
                "fast": ours[order, "fast"],
            }
            rows.append(row)
            print(row, flush=True)
    fresh = repeated_table(cases)
    return "\n".join([table(rows, quick), *fresh, *([] if tiny else power()), ""])


def table(rows: list[dict[str, Any]], quick: bool) -> str:
    def ms(t: float) -> str:
        return "-" if t != t else f"{1000 * t:.1f}"

    def ratio(a: float, b: float) -> str:
        return "-" if a != a else f"{a / b:.2f}"

    out = [
        "# gradcheck vs jax.test_util.check_grads (speed)",
        "",
        f"Generated by `benchmarks/jax_speed.py`{' --quick' if quick else ''} on "
        f"{platform.machine()} ({os.cpu_count()} cores), jax {jax.__version__}, Python "
        f"{platform.python_version()}. Median wall time in milliseconds after one warm-up run "
        f"(runs slower than {SLOW:.0f} s are timed once); ratio = ours / theirs (below 1: "
        "gradcheck is faster). Inputs are float64 for both tools. gc.check at order 1 always "
        "checks reverse mode, forward mode and their adjoint consistency, so both order-1 rows "
        "compare against the same gc.check run; a repeated check of one function reuses the "
        "XLA programs its first check compiled (the cold times below include compiling).",
        "",
        "| case | n | check | check_grads | gc full | ratio | gc fast | ratio | verdicts |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    cold = [
        "",
        "## First call (cold)",
        "",
        "The same checks, timed on their first run in the process: what one check in a test "
        "suite costs. check_grads then compiles each primitive it meets (op by op), gc.check "
        "its whole function.",
        "",
        "| case | n | check | check_grads | gc full | ratio | gc fast | ratio |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    note = (
        "check_grads' fwd+rev and order-2 rows run after its order-1 rev row of the same "
        "case and reuse the primitives it compiled, so only that first row is fully cold "
        "for it; gc.check compiles its programs on its first check of a function."
    )
    for r in rows:
        (full, full_cold, v_full), (fast, fast_cold, v_fast) = r["full"], r["fast"]
        out.append(
            f"| {r['name']} | {r['n']} | {r['check']} | {ms(r['theirs'])} | {ms(full)} | "
            f"{ratio(full, r['theirs'])} | {ms(fast)} | {ratio(fast, r['theirs'])} | "
            f"{v_full}/{v_fast} (check_grads: {'pass' if r['theirs_ok'] else 'fail'}) |"
        )
        cold.append(
            f"| {r['name']} | {r['n']} | {r['check']} | {ms(r['theirs_cold'])} | "
            f"{ms(full_cold)} | {ratio(full_cold, r['theirs_cold'])} | {ms(fast_cold)} | "
            f"{ratio(fast_cold, r['theirs_cold'])} |"
        )
    out += [
        "",
        f"Order 2 in full mode compares all n² Hessian entries; it is not run beyond n = "
        f'{FULL_HESSIAN_MAX} ("not run"). check_grads checks one random direction per '
        "mode, so its cost does not grow with n the way an every-entry check must; the fair "
        "comparison for it is gc fast mode (seeded random projections). Verdicts other than "
        "pass on these correct functions are false alarms.",
        *cold,
        "",
        note,
    ]
    return "\n".join(out)


def main() -> None:
    args = speed_arguments(__doc__ or "", OUT).parse_args()
    publish(run(args.quick or args.tiny, args.tiny), args.out)


if __name__ == "__main__":
    main()
