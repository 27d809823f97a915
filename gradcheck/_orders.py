"""Orders 1 … n: each order's analytic derivative against differences of the order below.

Order 1 compares fn's derivatives with differences of fn (or of the surrogate). Order k
differentiates the analytic (k-1)-th derivative map x ↦ J(x)ᵀu numerically, which needs
nothing but the framework's ability to differentiate its own derivatives; an order stops the
climb when it does not pass, since the next would only echo it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._compare import median
from ._differentiable import Differentiable, Unsupported
from ._fast import fast
from ._fd import measure_noise
from ._full import full
from ._guard import Guarded
from ._judge import Context, Route
from ._options import Options
from ._prefetch import Ahead, Prefetched
from ._progress import Advance, Counted
from ._results import CheckResult, Tolerance, worst_verdict


@dataclass
class Orders:
    """The results of climbing the orders, and where the climb ended.

    Attributes:
        checks: every check's result, in order. notes: the checker's own facts.
        current: the derivative map checked last (its adapter notes belong in the report).
    """

    checks: list[CheckResult]
    notes: list[str]
    current: Differentiable


def check_orders(
    target: Differentiable,
    source: Differentiable,
    values: tuple[np.ndarray, np.ndarray],
    options: Options,
    tolerance: Tolerance,
    rng: np.random.Generator,
    surrogate: bool,
    advance: Advance | None = None,
    ahead: tuple[Ahead, np.ndarray | None] | None = None,
) -> Orders:
    """Check orders 1 … options.order of target against differences of source.

    `values` are (target, source) at the point; `surrogate` says that source is a declared
    surrogate (then order 1 is a "surrogate" check and target itself tells whether the
    override is in effect); `advance` counts every numeric evaluation (a progress bar);
    `ahead` is what order 1 will ask for first, already drawn from rng, with f there where
    the preflight evaluated it (`_prefetch`).
    """
    done = Orders([], [], target)
    numeric_source, (c0, cs0) = source, values
    for k in range(1, options.order + 1):
        if k > 1:
            if worst_verdict([c.verdict for c in done.checks]) != "pass":
                done.notes.append(f"order {k} and above not checked: order {k - 1} did not pass")
                break
            u = (
                np.ones(done.current.m)
                if done.current.m == 1
                else rng.standard_normal(done.current.m)
            )
            try:
                done.current = done.current.gradient_map(u)
            except Unsupported as skipped:
                done.checks.append(_not_checked(k, skipped))
                break
            numeric_source = done.current
            try:
                c0 = cs0 = done.current.value(done.current.x0)
            except NotImplementedError as missing:  # JAX igamma has no second derivative
                done.checks.append(_not_checked(k, missing))
                break
            if not np.isfinite(c0).all():
                message = f"the order-{k - 1} analytic derivative is NaN or inf at this point"
                done.checks.append(CheckResult("hvp", "nonfinite", message, order=k))
                break
        guarded = Guarded(numeric_source if advance is None else Counted(numeric_source, advance))
        plain = Guarded(target) if surrogate and k == 1 else None
        numeric: Differentiable = guarded
        if k == 1 and ahead is not None:
            table, ladder = ahead[0].split(ahead[1])
            noise = measure_noise(guarded, rng, ahead[0].look, table)
            if ladder is not None and len(ladder):
                numeric = Prefetched(guarded, ahead[0].ladder, ladder)
        else:
            noise = measure_noise(guarded, rng)
        sigma = np.maximum(noise.sigma, options.nondet_tol)
        precision = 0.0 if noise.hidden else _precision(sigma, cs0)
        if precision:
            done.notes.append(
                f"the function's values carry round-off of {precision:.1g} of their size "
                "(it computes in lower precision internally, e.g. float32): the analytic "
                "side is held to that precision too"
            )
        context = Context(
            done.current,
            numeric,
            c0,
            cs0,
            tolerance,
            rng,
            order=k,
            surrogate=surrogate and k == 1,
            plain=plain,
            sigma=sigma,
            routes=_routes(options),
            kinds=options.checks,
            precision=precision,
            step=options.step,
            explicit=options.explicit,
        )
        try:
            results, notes = full(context) if options.mode == "full" else fast(context)
        except NotImplementedError as missing:  # Unsupported, or a framework's missing rule
            if k == 1:
                raise
            done.checks.append(_not_checked(k, missing))
            break
        done.checks += results
        done.notes += notes
        done.notes += [n for n in (guarded.note(), plain.note() if plain else None) if n]
    return done


def _not_checked(order: int, why: Exception) -> CheckResult:
    """An order the framework cannot differentiate: not a pass, and lower orders are kept."""
    reason = str(why).strip().splitlines()[0] if str(why).strip() else type(why).__name__
    return CheckResult(
        "hvp",
        "inconclusive",
        f"order {order} not checked: the framework cannot compute it here ({reason})",
        order=order,
    )


LOW_PRECISION = 1e-10
"""Measured relative noise above this is not float64 arithmetic, however long the sum:
a sum of 10^4 float64 terms rounds at about 1e-14; float32 code at about 1e-7."""


def _precision(sigma: np.ndarray, values: np.ndarray) -> float:
    """The unit round-off f's values show, when it is far coarser than float64's; else 0.

    The median over outputs of a sizeable value (at least 1e-3 of the largest): one output
    that happens to cancel to nearly 0 has a large relative noise in any precision.
    """
    size = np.abs(values)
    sizeable = size >= 1e-3 * float(size.max(initial=0.0))
    if not (sizeable & (size > 0)).any():
        return 0.0
    typical = median(sigma[sizeable & (size > 0)] / size[sizeable & (size > 0)])
    return typical if typical > LOW_PRECISION else 0.0


def _routes(options: Options) -> tuple[Route, ...]:
    wanted = set(options.checks)
    routes: list[Route] = []
    if wanted & {"vjp", "adjoint"}:
        routes.append("reverse")
    if wanted & {"jvp", "adjoint"}:
        routes.append("forward")
    return tuple(routes)
