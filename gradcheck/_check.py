"""check() and assert_grad(): analytic derivatives against finite differences, with a verdict.

The flow for one function at one point:
1. validate the options (`_options`) and bind fn through its framework's adapter (float64
   copies, flat vectors) — this is the one core module that knows `adapters/`;
2. preflight (`_preflight`): a function whose value changes between evaluations is
   "nondeterministic", one with a NaN/inf value "nonfinite", and nothing else is checked;
3. orders 1 … `order` (`_orders`): the analytic derivative (reverse mode, forward mode, or the
   user's own) against a numerical estimate, every entry in "full" mode (`_full`), seeded
   random projections in "fast" mode (`_fast`), reverse against forward mode where both exist;
4. an informative audit of the user's own-dtype gradient against the float64 truth.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ._backward import batched_grad, undefined_grad
from ._compare import NOISE_SAFETY, SAFETY
from ._differentiable import Differentiable
from ._errors import ForeignOutputError, GradientError, UsageError
from ._options import Options, validate
from ._orders import Orders, check_orders
from ._plan import plan
from ._prefetch import plan_ahead
from ._preflight import dtype_audit, preflight
from ._progress import progress
from ._results import CheckResult, Report, Tolerance, worst_verdict
from ._user_derivatives import UserDerivatives, UserFn
from .adapters import Adapter, get_adapter


def _name(fn: Callable[..., Any]) -> str:
    """How the report names fn: a method bound to a class by that class (a custom autograd
    Function's `MySoftplus.apply`, not the inherited `Function.apply`)."""
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type) and hasattr(fn, "__name__"):
        return f"{owner.__qualname__}.{fn.__name__}"
    return str(getattr(fn, "__qualname__", None) or type(fn).__name__)


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
    checks: str | Iterable[str] | None = None,
    nondet_tol: float = 0.0,
    step: float | None = None,
    max_evaluations: int | None = None,
    models: Sequence[Any] | None = None,
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
        checks: the kinds of check to run, from "vjp" (reverse mode against differences),
            "jvp" (forward mode against differences), "adjoint" (reverse against forward
            mode), "undefined_grad" (a backward given undefined output gradients, torch),
            "batched_grad" (the batched backward against one per row; opt-in) and "dtype"
            (the user's own-dtype gradient, informative); default all but "batched_grad".
        nondet_tol: legitimate nondeterminism (atomics, index_add): evaluations that differ
            by up to this much are not "nondeterministic", and it joins the noise budget.
        step: an absolute finite-difference step to use instead of the adaptive ladder, for
            results that must reproduce a fixed eps; noted in the report. None: adaptive.
        max_evaluations: a budget of function evaluations; a full check that would need
            more runs in fast mode instead, with a note.
        models: models a closure calls (Keras), to be run as float64 clones while the check
            runs — a closure over float32 models is otherwise checked in float32, where its
            noise pushes steps past relu kinks; the user's models are left untouched.

    Returns:
        The report: `report.verdict`, the per-check evidence, `str(report)` for people.

    Raises:
        UsageError: bad options or inputs. Exceptions raised by fn itself propagate unchanged.

    Example:
        >>> import numpy as np, gradcheck as gc
        >>> gc.check(np.sin, np.array([0.5, 1.0]), jacobian=lambda x: np.diag(np.cos(x))).verdict
        'pass'
    """
    options = validate(
        order=order,
        mode=mode,
        rtol=rtol,
        atol=atol,
        seed=seed,
        checks=checks,
        nondet_tol=nondet_tol,
        step=step,
        max_evaluations=max_evaluations,
    )
    user = {"grad": grad, "jacobian": jacobian, "vjp": vjp, "jvp": jvp, "hvp": hvp}
    if user["hvp"] is None and any(user.values()) and options.order > 1:
        raise UsageError(_beyond_user_order(options.order, 1))
    if user["hvp"] is not None and options.order > 2:
        raise UsageError(_beyond_user_order(options.order, 2))

    def checked(adapter: Adapter, notes: tuple[str, ...] = ()) -> Report:
        with adapter.substitute(models) if models else contextlib.nullcontext():
            target, source = _bind(adapter, fn, inputs, dict(kwargs or {}), wrt, user, surrogate)
            with target.session(), source.session():
                return _run(_name(fn), target, source, options, surrogate is not None, notes)

    try:
        return checked(get_adapter([*inputs, fn], framework))
    except ForeignOutputError as foreign:
        if framework is not None:
            raise
        # A closure over another framework's model called with NumPy inputs: check it with
        # that framework's derivatives, as the user would with framework=.
        return checked(
            get_adapter([], foreign.framework),
            (
                f"fn returns {foreign.framework} values for NumPy inputs: checked with "
                f"{foreign.framework}'s derivatives (framework={foreign.framework!r})",
            ),
        )


def _bind(
    adapter: Adapter,
    fn: Callable[..., Any],
    inputs: tuple[Any, ...],
    kwargs: dict[str, Any],
    wrt: Any,
    user: dict[str, UserFn | None],
    surrogate: Callable[..., Any] | None,
) -> tuple[Differentiable, Differentiable]:
    """fn as the analytic side (the user's own derivatives where given), and the function
    whose differences it is compared with (fn itself, or the declared surrogate)."""
    target: Differentiable = adapter.bind(fn, inputs, kwargs, wrt)
    if any(d is not None for d in user.values()):
        target = UserDerivatives(target, **user)
    if surrogate is None:
        return target, target
    source = adapter.bind(surrogate, inputs, kwargs, wrt)
    if (source.n, source.m) != (target.n, target.m):
        raise UsageError(
            f"the surrogate maps {source.n} inputs to {source.m} outputs, but fn "
            f"maps {target.n} to {target.m}: they must have the same signature"
        )
    return target, source


def _beyond_user_order(order: int, highest: int) -> str:
    return (
        f"order={order} needs analytic derivatives of that order, but the hand-written ones "
        f"reach order {highest}"
        + ("" if highest == 2 else " (pass hvp= for order 2)")
        + ": gradcheck checks order k against differences of order k-1"
    )


def _run(
    name: str,
    target: Differentiable,
    source: Differentiable,
    options: Options,
    surrogate: bool,
    notes: tuple[str, ...] = (),
) -> Report:
    """Preflight, plan, every order, the backward's own checks and the dtype audit; `notes`
    are the binding's own facts for the report."""
    rng = np.random.default_rng(options.seed)

    def report(checks: list[CheckResult], more: tuple[str, ...] = ()) -> Report:
        described = tuple(f"{leaf.name}: {leaf.dtype}{list(leaf.shape)}" for leaf in target.inputs)
        return Report(
            name,
            target.framework,
            worst_verdict([c.verdict for c in checks]),
            tuple(checks),
            tuple(dict.fromkeys([*notes, *target.notes, *more])),
            options.mode,
            options.order,
            options.seed,
            described,
        )

    if target.n == 0 or target.m == 0:
        empty = "inputs" if target.n == 0 else "outputs"
        return report(
            [],
            (
                f"nothing to differentiate: the checked {empty} are empty (torch's checker "
                "passes such cases too)",
            ),
        )
    # What order 1 will ask for first (the noise table, the first ladder rows) goes to the
    # framework with the preflight's repeats, in one call; a surrogate's are its own.
    ladders = options.mode == "full" and options.step is None
    ahead = None if surrogate else plan_ahead(target, rng, ladders=ladders)
    f0, stop, jitter, known = preflight(
        target, options.nondet_tol, None if ahead is None else ahead.points
    )
    if stop is not None:
        return report([stop])
    options, planned, long = plan(options, target)
    if jitter > options.nondet_tol:
        planned += (
            f"repeated evaluations at the point differ by up to {jitter:.2g} (round-off that "
            "changes from call to call, e.g. threaded BLAS): folded into the noise budget",
        )
        options = replace(options, nondet_tol=jitter)
    s0 = source.value(source.x0) if surrogate else f0
    tolerance = Tolerance(SAFETY, NOISE_SAFETY, options.atol, options.rtol)
    with progress(long, f"gradcheck: {target.n} coordinates") as advance:
        done = check_orders(
            target,
            source,
            (f0, s0),
            options,
            tolerance,
            rng,
            surrogate=surrogate,
            advance=advance,
            ahead=None if ahead is None else (ahead, known),
        )
    if not done.checks:
        raise UsageError(
            f"there is no analytic derivative to check ({target.framework}): pass grad=, "
            "jacobian=, vjp= or jvp= (NumPy code has no autodiff); see the notes: "
            + "; ".join(done.notes)
        )
    extra = [
        undefined_grad(target) if "undefined_grad" in options.checks and _ran(done) else None,
        batched_grad(target, rng) if "batched_grad" in options.checks else None,
    ]
    audit, audit_note = dtype_audit(target, rng) if "dtype" in options.checks else (None, None)
    return report(
        [*done.checks, *(c for c in (*extra, audit) if c is not None)],
        (*planned, *done.notes, *done.current.notes, *([audit_note] if audit_note else [])),
    )


def _ran(done: Orders) -> bool:
    """Whether the backward ran at the point: where it raised (a vjp finding without entries),
    running it with undefined output gradients has nothing to add."""
    return not any(c.kind == "vjp" and c.entries == 0 and c.verdict != "pass" for c in done.checks)


def assert_grad(fn: Callable[..., Any], *inputs: Any, **options: Any) -> Report:
    """Like `check`, but raise `GradientError` (an AssertionError) unless the verdict is "pass".

    Returns:
        The report, when it passes.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    result = check(fn, *inputs, **options)
    if not result.passed:
        raise GradientError(result)
    return result
