"""gc.check against torch.autograd.gradcheck, side by side, on the same functions and inputs.

Cases: f(x) = sum(tanh(W x + b)^2) w.r.t. x for n = 10, 100, 1000, and the loss of a tanh MLP
w.r.t. all of its parameters (~1k and ~10k). Each is timed with gc.check (mode="full" and
"fast") and torch.autograd.gradcheck (fast_mode=False and True); the table gives medians and
the ratio ours/theirs (below 1 means gradcheck is faster). Targets: full mode >= 10x faster
than torch's slow mode on the ~10k-parameter MLP and >= 5x at n = 1000; fast mode within 2x
of torch's fast mode.

Run: `.venv/bin/python benchmarks/torch_speed.py` (writes reports/benchmarks/torch.md; about
two to five minutes on 2 cores). `--quick` runs every case once, for a smoke test.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import platform
from collections.abc import Callable, Iterator
from typing import Any

import torch
from _common import REPORTS, publish, speed_arguments, speed_cases, timed

import gradcheck as gc

OUT = REPORTS / "torch.md"


@contextlib.contextmanager
def counting_rows() -> Iterator[list[int]]:
    """Count the points gc.check evaluates through the torch adapter's batched `values`.

    Evaluations per input coordinate are what full mode's cost is made of (torch's slow mode
    spends two); this makes the table say how many gc.check spent.
    """
    from gradcheck.adapters.torch import TorchFlat

    counter = [0]
    original = TorchFlat.values

    def values(self: TorchFlat, xs: Any) -> Any:
        counter[0] += len(xs)
        return original(self, xs)

    TorchFlat.values = values  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        TorchFlat.values = original  # type: ignore[method-assign]


Case = tuple[Any, tuple[Any, ...], Callable[..., Any], tuple[Any, ...]]  # ours, theirs


def tanh_case(n: int) -> Case:
    """f(x) = sum(tanh(Wx + b)^2) with fixed W (n x n) and b; checked w.r.t. x."""
    g = torch.Generator().manual_seed(n)
    w = torch.randn(n, n, generator=g, dtype=torch.float64) / n**0.5
    b = torch.randn(n, generator=g, dtype=torch.float64)
    x = torch.randn(n, generator=g, dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(w @ x + b) ** 2).sum()

    return f, (x,), f, (x.clone().requires_grad_(),)


def mlp_case(widths: tuple[int, ...]) -> Case:
    """A tanh MLP's squared-output loss, checked w.r.t. all parameters."""
    torch.manual_seed(len(widths) + widths[1])
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(torch.nn.Linear(a, b))
        if i + 2 < len(widths):
            layers.append(torch.nn.Tanh())
    model = torch.nn.Sequential(*layers).double()
    x = torch.randn(8, widths[0], dtype=torch.float64)

    class Loss(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (self.model(x) ** 2).mean()

    loss = Loss()
    names = [name for name, _ in loss.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in loss.parameters())

    def theirs(*ps: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(loss, dict(zip(names, ps, strict=True)), (x,))

    return loss, (x,), theirs, params


def central_points_time(fn: Callable[..., Any], inputs: tuple[Any, ...], repeats: int) -> float:
    """Median time to evaluate, batched with vmap, the 2n points torch's slow mode uses.

    x ± 1e-6·e_i for every coordinate i: the fewest points any central difference needs,
    evaluated the way gc.check evaluates (vmap over chunks of dense points). No full-mode
    check can be cheaper than this, however it chooses its steps, so floor / torch slow is
    the best ratio a full mode built on central differences could reach on this machine.
    """
    sizes = [t.numel() for t in inputs]
    flat0 = torch.cat([t.detach().reshape(-1) for t in inputs])
    n = flat0.numel()

    def flat_fn(v: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(v, sizes)
        shaped = (p.reshape(t.shape) for p, t in zip(pieces, inputs, strict=True))
        result: torch.Tensor = fn(*shaped)
        return result

    def evaluate() -> None:
        chunk = max(1, 2**25 // (8 * n))  # 32 MiB of points per vmapped call
        with torch.no_grad():
            for start in range(0, 2 * n, chunk):
                rows = torch.arange(start, min(start + chunk, 2 * n))
                points = flat0.repeat(len(rows), 1)
                points[torch.arange(len(rows)), rows % n] += torch.where(rows < n, 1e-6, -1e-6)
                torch.func.vmap(flat_fn)(points)

    return timed(evaluate, repeats)[0]


# torch.autograd.gradcheck's modes: slow, fast, and fast with forward mode checked too (what
# gc.check's fast mode checks: reverse mode, forward mode and their consistency).
THEIR_MODES: dict[str, dict[str, bool]] = {
    "full": {"fast_mode": False},
    "fast": {"fast_mode": True},
    "fast_fwd": {"fast_mode": True, "check_forward_ad": True},
}


def run(quick: bool, tiny: bool = False) -> str:
    cases = [
        (name, *tanh_case(size), {}, repeats)
        if kind == "tanh"
        else (name, *mlp_case(size), {"wrt": "params"}, repeats)
        for name, kind, size, repeats in speed_cases(tiny)
    ]
    lines = []
    for name, fn, inputs, theirs_fn, theirs_inputs, options, repeats in cases:
        repeats = 1 if quick else repeats
        n = sum(t.numel() for t in theirs_inputs)
        row: dict[str, Any] = {"name": name, "n": n}
        for mode in ("full", "fast"):
            ours = functools.partial(gc.check, fn, *inputs, mode=mode, **options)
            row[f"ours_{mode}"], report = timed(ours, repeats)
            row[f"verdict_{mode}"] = report.verdict
            if mode == "full":
                with counting_rows() as counter:
                    ours()
                row["rows"] = counter[0]
        row["floor"] = central_points_time(theirs_fn, theirs_inputs, repeats)
        for key, settings in THEIR_MODES.items():
            theirs = functools.partial(
                torch.autograd.gradcheck, theirs_fn, theirs_inputs, **settings
            )
            # torch's slow mode on the ~10k case takes a minute a run: once, no warm-up.
            slow = key == "full" and n > 2000
            row[f"theirs_{key}"], row[f"theirs_ok_{key}"] = timed(
                theirs, 1 if slow else repeats, warm_up=not slow
            )
        lines.append(row)
        print(f"{name}: {row}", flush=True)
    return table(lines, quick)


def table(rows: list[dict[str, Any]], quick: bool) -> str:
    def ms(t: float) -> str:
        return f"{1000 * t:.1f}"

    out = [
        "# gradcheck vs torch.autograd.gradcheck (speed)",
        "",
        f"Generated by `benchmarks/torch_speed.py`{' --quick' if quick else ''} on "
        f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch "
        f"{torch.__version__}, Python {platform.python_version()}. Median wall time in "
        "milliseconds after one warm-up run (none for torch's slow mode on the ~10k case); "
        "ratio = ours / theirs (below 1: gradcheck is faster). Inputs are float64 for both "
        "tools. The 2-core machine was shared with other jobs: compare ratios (both tools "
        "ran side by side), not absolute times.",
        "",
        "| case | n | gc full | evals/coord | torch slow | ratio | 2n points | floor ratio "
        "| gc fast | torch fast | ratio | torch fast+fwd | ratio | verdicts |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['name']} | {r['n']} | {ms(r['ours_full'])} | {r['rows'] / r['n']:.1f} | "
            f"{ms(r['theirs_full'])} | "
            f"{r['ours_full'] / r['theirs_full']:.2f} | {ms(r['floor'])} | "
            f"{r['floor'] / r['theirs_full']:.2f} | {ms(r['ours_fast'])} | "
            f"{ms(r['theirs_fast'])} | {r['ours_fast'] / r['theirs_fast']:.2f} | "
            f"{ms(r['theirs_fast_fwd'])} | {r['ours_fast'] / r['theirs_fast_fwd']:.2f} | "
            f"{r['verdict_full']}/{r['verdict_fast']} (torch: {r['theirs_ok_full']}/"
            f"{r['theirs_ok_fast']}/{r['theirs_ok_fast_fwd']}) |"
        )
    out += [
        "",
        "Targets: full mode >= 10x faster than torch's slow mode on the ~10k-parameter MLP "
        "(ratio <= 0.1) and >= 5x at n = 1000 (ratio <= 0.2); fast mode within 2x of torch's "
        "fast mode (ratio <= 2).",
        "",
        "evals/coord: points gc.check's full mode evaluated (batched, through vmap) per input "
        "coordinate; torch's slow mode evaluates 2, one at a time. Full mode's cost is about "
        "n x evals/coord x (cost of one batched evaluation).",
        "",
        "2n points: the time to evaluate, batched with vmap over whole points, just the 2n "
        "points x ± 1e-6·e_i that torch's slow mode evaluates one at a time: the fewest any "
        "central-difference check can use. floor ratio = that / torch slow. gc.check needs two "
        "ladder rows per coordinate (4 points) for an error estimate and kink evidence it can "
        "vouch for (Note: Step choice in gradcheck/_fd/ladder.py), so gc full / 2n points is "
        "about 2 at best when batches cost the same; for models it passes the parameter "
        "tensors a batch does not vary unbatched (Note: Unvaried inputs unbatched in "
        "gradcheck/adapters/torch/_flat.py), which this floor does not.",
        "",
        "torch fast+fwd: torch's fast mode with check_forward_ad=True, which checks what "
        "gc.check's fast mode checks (reverse mode, forward mode, their consistency); gc.check "
        "also draws three probes per input tensor instead of one for all, measures the "
        "round-off of f and bounds the error of every estimate.",
        "",
    ]
    return "\n".join(out)


def main() -> None:
    parser = speed_arguments(__doc__ or "", OUT)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads for both tools (default 1: on a shared "
        "2-core machine, 2 threads made small ops up to 20x slower)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    publish(run(args.quick or args.tiny, args.tiny), args.out)


if __name__ == "__main__":
    main()
