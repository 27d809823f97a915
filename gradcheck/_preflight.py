"""What is decided before any derivative is compared, and the informative dtype audit.

A function that returns different values at the same point cannot be checked by differences
at all ("nondeterministic"), and one whose value is NaN/inf at the point has nothing finite
to differentiate ("nonfinite"): both end the check with that verdict. After the checks, the
user's own-dtype gradient is compared with the float64 one, for information only.
"""

from __future__ import annotations

import numpy as np

from ._differentiable import Differentiable, Unsupported
from ._results import CheckResult
from ._user_derivatives import as_array

_NONDETERMINISTIC = (
    "two evaluations at the same point differ (by {gap:.3g} at output entry {where}): seed the "
    "randomness, or call model.eval() to turn off dropout and the state a module updates as "
    "it runs (batch-norm statistics, spectral-norm power iterations)"
)


def preflight(target: Differentiable, nondet_tol: float) -> tuple[np.ndarray, CheckResult | None]:
    """f(x0), and the verdict that ends the check before it starts, if any.

    Differences up to `nondet_tol` between evaluations are tolerated: they are legitimate
    nondeterminism the user declared (atomics), folded into the error budget instead.
    """
    f0 = target.value(target.x0)
    again = target.value(target.x0)
    with np.errstate(invalid="ignore"):
        same = (f0 == again) | (np.isnan(f0) & np.isnan(again))
        difference = f0 - again
    gap = np.where(same, 0.0, np.where(np.isfinite(difference), np.abs(difference), np.inf))
    if (gap > nondet_tol).any():
        where = int(np.argmax(gap))
        message = _NONDETERMINISTIC.format(gap=float(gap[where]), where=where)
        return f0, CheckResult("vjp", "nondeterministic", message)
    if not np.isfinite(f0).all():
        message = "the function's value is NaN or inf at this point"
        return f0, CheckResult("vjp", "nonfinite", message)
    return f0, None


def dtype_audit(target: Differentiable, rng: np.random.Generator) -> CheckResult | None:
    """How far the user's own-dtype gradient is from the float64 one (informative)."""
    u = np.ones(target.m) if target.m == 1 else rng.standard_normal(target.m)
    try:
        native = target.native_vjp(u)
        if native is None:
            return None
        truth = target.vjp(target.x0, u)
    except Unsupported:
        return None
    native = as_array(native).astype(np.float64).ravel()
    scale = float(np.abs(truth).max(initial=0.0)) or 1.0
    worst = float(np.abs(native - truth).max(initial=0.0)) / scale
    dtypes = sorted({leaf.dtype for leaf in target.inputs})
    return CheckResult(
        "dtype",
        "pass",
        f"the gradient in the user's dtype ({', '.join(dtypes)}) "
        f"differs from the float64 one by up to {worst:.2g} of its largest entry "
        "(informative)",
    )
