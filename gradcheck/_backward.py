"""Checks of the backward itself, beside its numbers: undefined output gradients, batching.

Both are checks torch.autograd.gradcheck users know (check_undefined_grad,
check_batched_grad) and both find real bugs its numbers cannot: a backward that mishandles an
output nobody differentiates (native_group_norm returned None for mean/rstd's gradient), and a
batching rule that disagrees with the plain backward. Neither needs finite differences; an
adapter that has no such notion raises Unsupported and the kind is skipped.
"""

from __future__ import annotations

import numpy as np

from ._differentiable import Differentiable, Unsupported
from ._results import CheckResult

BATCHED_ROWS = 3
BATCHED_ULPS = 64.0


def undefined_grad(fn: Differentiable) -> CheckResult | None:
    """The backward run with every output gradient undefined; None where unsupported."""
    try:
        problem = fn.undefined_grad()
    except Unsupported:
        return None
    if problem is None:
        return CheckResult(
            "undefined_grad",
            "pass",
            "the backward handles undefined output gradients (zero or undefined input gradients)",
        )
    return CheckResult("undefined_grad", "fail", problem, cause=problem)


def batched_grad(fn: Differentiable, rng: np.random.Generator) -> CheckResult | None:
    """The framework's batched backward against one backward per row; None where unsupported."""
    us = rng.standard_normal((BATCHED_ROWS, fn.m))
    try:
        batched = fn.vmapped_vjps(fn.x0, us)
    except Unsupported:
        return None
    looped = np.stack([fn.vjp(fn.x0, u) for u in us])
    scale = float(np.nanmax(np.abs(looped), initial=0.0))
    allowed = BATCHED_ULPS * fn.analytic_eps * max(scale, np.finfo(np.float64).tiny)
    with np.errstate(invalid="ignore"):
        gap = np.abs(batched - looped)
    worst = float(np.nanmax(np.where(np.isnan(gap), np.inf, gap), initial=0.0))
    if worst <= allowed:
        return CheckResult(
            "batched_grad",
            "pass",
            f"the batched backward equals one backward per row ({BATCHED_ROWS} random "
            f"cotangents; worst difference {worst:.2g})",
        )
    message = (
        f"the batched backward differs from one backward per row by up to {worst:.3g} "
        f"(allowed {allowed:.2g}): the batching rule (vmap / is_grads_batched) is wrong"
    )
    return CheckResult("batched_grad", "fail", message, cause=message)
