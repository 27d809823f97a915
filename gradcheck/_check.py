"""check() and assert_grad(): analytic derivatives against finite differences, with a verdict.

The flow for one function at one point:
1. bind it through its framework's adapter (float64 copies, flat vectors);
2. evaluate it twice at the point: different values mean "nondeterministic", a NaN/inf value
   means "nonfinite", and nothing else is worth checking then;
3. for each order 1 … `order`: the analytic derivative (reverse mode, forward mode, or the
   user's own) against a numerical estimate, every entry in "full" mode, seeded random
   projections in "fast" mode (see `_modes`); order k differentiates the analytic
   (k-1)-th derivative numerically;
4. reverse against forward mode where both exist, which needs no finite differences at all;
5. an informative audit of the user's own-dtype gradient against the float64 truth.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._compare import NOISE_SAFETY, SAFETY
from ._differentiable import Differentiable, Unsupported
from ._errors import GradientError, UsageError
from ._modes import Context, first_order
from ._noise import measure_noise
from ._results import CheckResult, Report, Tolerance, worst_verdict
from ._user_derivatives import UserDerivatives, UserFn, as_array
from .adapters import get_adapter

MAX_ORDER = 8
MODES = ("full", "fast")


def _validate(order: int, mode: str, rtol: float | None, atol: float | None, seed: int) -> None:
    if (
        isinstance(order, bool)
        or not isinstance(order, (int, np.integer))
        or not 1 <= order <= MAX_ORDER
    ):
        raise UsageError(f"order must be an integer from 1 to {MAX_ORDER}, got {order!r}")
    if mode not in MODES:
        raise UsageError(f"mode must be one of {MODES}, got {mode!r}")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None and not (
            isinstance(value, (int, float)) and np.isfinite(value) and value >= 0
        ):
            raise UsageError(f"{name} must be a non-negative number, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise UsageError(f"seed must be an integer, got {seed!r}")


def _name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__qualname__", None) or type(fn).__name__)


def _single(kind: str, verdict: str, message: str) -> CheckResult:
    return CheckResult(kind, verdict, message)  # type: ignore[arg-type]


def check(
    fn: Callable[..., Any],
    *inputs: Any,
    wrt: int | str | tuple[int, ...] | list[int] | None = None,
    order: int = 1,
    mode: str = "full",
    grad: UserFn | None = None,
    jacobian: UserFn | None = None,
    vjp: UserFn | None = None,
    jvp: UserFn | None = None,
    hvp: UserFn | None = None,
    surrogate: Callable[..., Any] | None = None,
    framework: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int = 0,
    kwargs: dict[str, Any] | None = None,
) -> Report:
    """Check fn's derivatives at `inputs` against finite differences; never raises on a finding.

    Args:
        fn: a function of one framework's arrays, or a module/layer/model.
        *inputs: its positional arguments; floating-point ones are checked unless `wrt` says.
        wrt: positional indices to check; for modules also "inputs", "params" or "all".
        order: check derivatives of order 1 … order (2 adds Hessian-vector products).
        mode: "full" compares every Jacobian entry; "fast" compares seeded random projections
            (three per input leaf), at a cost independent of the input size.
        grad, jacobian, vjp, jvp, hvp: hand-written derivatives to check instead of autodiff.
            grad(*inputs) returns the gradient of a scalar fn (one array per checked input);
            jacobian(*inputs) the (*out_shape, *in_shape) Jacobian; vjp(*inputs, u) and
            jvp(*inputs, v) the products; hvp(*inputs, v) a Hessian-vector product (order 2).
        surrogate: for custom gradient overrides: a function whose plain derivative the
            override is meant to equal (straight-through: the identity).
        framework: force an adapter ("numpy", "torch", "jax", "tensorflow").
        rtol, atol: added to the error budget (Note: Error budget in `_compare`); None adds 0.
        seed: seeds the random projections and cotangents; recorded in the report.
        kwargs: keyword arguments for fn (and the surrogate), passed through unchanged.

    Returns:
        The report: `report.verdict`, the per-check evidence, `str(report)` for people.

    Raises:
        UsageError: bad options or inputs. Exceptions raised by fn itself propagate unchanged.

    Example:
        >>> import numpy as np, gradcheck as gc
        >>> gc.check(np.sin, np.array([0.5, 1.0]), jacobian=lambda x: np.diag(np.cos(x))).verdict
        'pass'
    """
    _validate(order, mode, rtol, atol, seed)
    adapter = get_adapter([*inputs, fn], framework)
    call_kwargs = dict(kwargs or {})
    target: Differentiable = adapter.bind(fn, inputs, call_kwargs, wrt)
    if any(d is not None for d in (grad, jacobian, vjp, jvp, hvp)):
        target = UserDerivatives(target, grad=grad, jacobian=jacobian, vjp=vjp, jvp=jvp, hvp=hvp)
    source = target
    if surrogate is not None:
        source = adapter.bind(surrogate, inputs, call_kwargs, wrt)
        if (source.n, source.m) != (target.n, target.m):
            raise UsageError(
                f"the surrogate maps {source.n} inputs to {source.m} outputs, but fn "
                f"maps {target.n} to {target.m}: they must have the same signature"
            )
    tolerance = Tolerance(SAFETY, NOISE_SAFETY, float(atol or 0.0), float(rtol or 0.0))
    notes: list[str] = []  # the checker's own; the adapter's are read when the report is made
    current = target  # the derivative map being checked: fn, then its gradient maps
    rng = np.random.default_rng(seed)

    def report(checks: list[CheckResult]) -> Report:
        described = tuple(f"{leaf.name}: {leaf.dtype}{list(leaf.shape)}" for leaf in target.inputs)
        return Report(
            _name(fn),
            target.framework,
            worst_verdict([c.verdict for c in checks]),
            tuple(checks),
            tuple(dict.fromkeys([*target.notes, *notes, *current.notes])),
            mode,
            order,
            seed,
            described,
        )

    f0 = target.value(target.x0)
    again = target.value(target.x0)
    if not np.array_equal(f0, again, equal_nan=True):
        where = int(np.argmax(np.abs(np.nan_to_num(f0 - again, nan=np.inf))))
        return report(
            [
                _single(
                    "vjp",
                    "nondeterministic",
                    "two evaluations at the same point differ (by "
                    f"{abs(f0[where] - again[where]):.3g} at output entry {where}): seed the "
                    "randomness, or call model.eval() to turn off dropout and the state a "
                    "module updates as it runs (batch-norm statistics, spectral-norm "
                    "power iterations)",
                )
            ]
        )
    if not np.isfinite(f0).all():
        return report(
            [_single("vjp", "nonfinite", "the function's value is NaN or inf at this point")]
        )

    s0 = source.value(source.x0) if surrogate is not None else f0
    checks: list[CheckResult] = []
    numeric_source, c0, cs0 = source, f0, s0
    for k in range(1, order + 1):
        if k > 1:
            if worst_verdict([c.verdict for c in checks]) != "pass":
                # Order k is checked against differences of the analytic order k-1 derivative;
                # once that is wrong (or unverified) the comparison would only echo it.
                notes.append(f"order {k} and above not checked: order {k - 1} did not pass")
                break
            u = np.ones(current.m) if current.m == 1 else rng.standard_normal(current.m)
            try:
                current = current.gradient_map(u)
            except Unsupported as skipped:
                notes.append(f"order {k} and above not checked: {skipped}")
                break
            numeric_source = current
            c0 = cs0 = current.value(current.x0)
            if not np.isfinite(c0).all():
                checks.append(
                    CheckResult(
                        "hvp",
                        "nonfinite",
                        f"the order-{k - 1} analytic derivative is NaN or inf at this point",
                        order=k,
                    )
                )
                break
        context = Context(
            current,
            numeric_source,
            c0,
            cs0,
            tolerance,
            rng,
            order=k,
            mode=mode,
            surrogate=surrogate is not None and k == 1,
            plain=target if k == 1 else None,
            sigma=measure_noise(numeric_source, cs0, rng),
        )
        results, skipped_notes = first_order(context)
        checks += results
        notes += skipped_notes
    if not checks:
        raise UsageError(
            "there is no analytic derivative to check: NumPy functions need grad=, "
            "jacobian=, vjp= or jvp=; see the notes: " + "; ".join(notes)
        )
    audit = _dtype_audit(target, rng)
    if audit is not None:
        checks.append(audit)
    return report(checks)


def _dtype_audit(target: Differentiable, rng: np.random.Generator) -> CheckResult | None:
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


def assert_grad(fn: Callable[..., Any], *inputs: Any, **options: Any) -> Report:
    """Like `check`, but raise `GradientError` (an AssertionError) unless the verdict is "pass".

    Returns:
        The report, when it passes.
    """
    result = check(fn, *inputs, **options)
    if not result.passed:
        raise GradientError(result)
    return result
