"""Drop-in replacements for the checkers people already call, with gradcheck behind them.

Replacing the import is all a test suite needs::

    from torch.autograd import gradcheck, gradgradcheck   # before
    from gradcheck.compat import gradcheck, gradgradcheck  # after

    from jax.test_util import check_grads                  # before
    from gradcheck.compat import check_grads               # after

The signatures, return values and exceptions are the anchors' own; the engine and the verdict
are gradcheck's (an adaptive step with an error bound per entry, float64 copies, kinks, NaN
traps and nondeterminism named as such). On a finding the exception carries the full report
(`.report`) and its text is the message.

Note: Option mapping
    torch.autograd.gradcheck / gradgradcheck:
    - inputs: the tensors with requires_grad=True are checked; everything else reaches func
      unchanged, as in torch.
    - eps: torch differences at a fixed 1e-6. Left at None, gradcheck picks the step per
      entry and bounds its error; given, it is honoured (`step=eps`, noted in the report).
    - atol, rtol: torch's 1e-5 and 1e-3 are not applied by default (the error budget
      replaces them); given, they widen the budget (`atol=`, `rtol=`).
    - raise_exception: True raises an error that is both torch's GradcheckError (a
      RuntimeError) and gradcheck's GradientError (an AssertionError); False returns False.
    - nondet_tol: folded into the noise budget (`nondet_tol=`).
    - check_undefined_grad, check_batched_grad: the check kinds "undefined_grad" and
      "batched_grad". check_grad_dtypes: the gradients' dtypes and devices are compared with
      the inputs' in the user's own dtypes, as torch does.
    - check_forward_ad: forward mode ("jvp") and forward against reverse ("adjoint");
      check_backward_ad: reverse mode ("vjp"). fast_mode: mode="fast".
    - check_batched_forward_grad: not checked (noted); masked=True (sparse masked
      semantics): refused with a UsageError.
    - gradgradcheck: the gradient function x ↦ Jᵀ·grad_outputs (given, or seeded random
      ones) is checked to first order, which is what torch's gradgradcheck checks;
      check_rev_over_rev is its reverse mode, check_fwd_over_rev its forward mode.

    jax.test_util.check_grads(f, args, order, modes, atol, rtol, eps):
    - order: orders 1 … order; modes: "fwd" checks forward mode, "rev" reverse mode, both
      also compare the two; atol/rtol/eps as above. A failure raises gradcheck's
      GradientError, an AssertionError as JAX's own is.

    Better by default, in both: the step adapts to each entry instead of one eps; the
    tolerance is the estimate's error bound, so ill-scaled functions neither false-alarm nor
    hide errors; NaN gradients fail (JAX's check passes NaN == NaN); everything runs on
    float64 copies.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._check import check
from ._errors import GradientError, UsageError
from ._results import Report

if TYPE_CHECKING:
    import torch

__all__ = ["check_grads", "gradcheck", "gradgradcheck"]

GRAD_OUTPUTS_SEED = 0


def gradcheck(
    func: Callable[..., Any],
    inputs: Any,
    *,
    eps: float | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_batched_forward_grad: bool = False,
    check_forward_ad: bool = False,
    check_backward_ad: bool = True,
    fast_mode: bool = False,
    masked: bool | None = None,
) -> bool:
    """`torch.autograd.gradcheck` with gradcheck's engine (Note: Option mapping).

    Returns:
        True when every requested check passes; False on a finding when raise_exception is
        False.

    Raises:
        GradientError: on a finding, when raise_exception is True; it is torch's
            GradcheckError (a RuntimeError) too.
        UsageError: no input requires grad, no kind of check asked for, or masked=True.

    Example:
        >>> import torch
        >>> from gradcheck.compat import gradcheck
        >>> x = torch.randn(3, dtype=torch.float64, requires_grad=True)
        >>> gradcheck(torch.sin, (x,))
        True
    """
    __tracebackhide__ = True
    args = _as_tuple(inputs)
    wrt = _requiring_grad(args)
    checks = _torch_checks(
        check_forward_ad, check_backward_ad, check_undefined_grad, check_batched_grad
    )
    if masked:
        raise UsageError("masked=True (sparse masked gradients) is not supported by gradcheck")
    report = check(
        func,
        *args,
        wrt=wrt,
        mode="fast" if fast_mode else "full",
        rtol=rtol,
        atol=atol,
        step=eps,
        nondet_tol=nondet_tol,
        checks=checks,
        framework="torch",
    )
    problems = _grad_dtype_problems(func, args, wrt) if check_grad_dtypes else []
    notes = ["check_batched_forward_grad is not checked"] if check_batched_forward_grad else []
    return _verdict(report, problems, notes, raise_exception)


def gradgradcheck(
    func: Callable[..., Any],
    inputs: Any,
    grad_outputs: Any = None,
    *,
    eps: float | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    gen_non_contig_grad_outputs: bool = False,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_fwd_over_rev: bool = False,
    check_rev_over_rev: bool = True,
    fast_mode: bool = False,
    masked: bool = False,
) -> bool:
    """`torch.autograd.gradgradcheck` with gradcheck's engine (Note: Option mapping).

    The gradient function x ↦ Jᵀ·grad_outputs is built with torch autograd (create_graph)
    and checked to first order: its derivative is the second derivative of func.
    `gen_non_contig_grad_outputs` is accepted for compatibility; layouts do not change the
    numbers gradcheck compares.
    """
    __tracebackhide__ = True
    args = _as_tuple(inputs)
    wrt = _requiring_grad(args)
    gradient = _gradient_function(func, wrt, grad_outputs)
    return gradcheck(
        gradient,
        args,
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
        nondet_tol=nondet_tol,
        check_undefined_grad=check_undefined_grad,
        check_grad_dtypes=check_grad_dtypes,
        check_batched_grad=check_batched_grad,
        check_forward_ad=check_fwd_over_rev,
        check_backward_ad=check_rev_over_rev,
        fast_mode=fast_mode,
        masked=masked,
    )


def check_grads(
    f: Callable[..., Any],
    args: Sequence[Any],
    order: int,
    modes: Sequence[str] = ("fwd", "rev"),
    atol: float | None = None,
    rtol: float | None = None,
    eps: float | None = None,
) -> None:
    """`jax.test_util.check_grads` with gradcheck's engine (Note: Option mapping).

    Raises:
        GradientError: (an AssertionError) on a finding, with the report as its message.
        UsageError: a mode other than "fwd"/"rev".

    Example:
        >>> import jax.numpy as jnp
        >>> from gradcheck.compat import check_grads
        >>> check_grads(jnp.sin, (jnp.array([0.5, 1.0]),), order=2)
    """
    __tracebackhide__ = True
    unknown = [m for m in modes if m not in ("fwd", "rev")]
    if unknown or not modes:
        raise UsageError(f"modes must be 'fwd' and/or 'rev', got {tuple(modes)!r}")
    checks = ["jvp"] * ("fwd" in modes) + ["vjp"] * ("rev" in modes)
    if len(checks) == 2:
        checks.append("adjoint")
    report = check(
        f, *args, order=order, rtol=rtol, atol=atol, step=eps, checks=checks, framework="jax"
    )
    if not report.passed:
        raise GradientError(report)


def _as_tuple(inputs: Any) -> tuple[Any, ...]:
    return tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)


def _requiring_grad(args: tuple[Any, ...]) -> list[int]:
    """The positions torch's checker differentiates: tensors with requires_grad=True."""
    wrt = [i for i, a in enumerate(args) if getattr(a, "requires_grad", False) is True]
    if not wrt:
        raise UsageError(
            "gradcheck expects at least one input tensor to require gradient, but none of "
            "them have requires_grad=True"
        )
    return wrt


def _torch_checks(forward: bool, backward: bool, undefined: bool, batched: bool) -> list[str]:
    if not (forward or backward):
        raise UsageError(
            "Expected at least one of check_forward_ad or check_backward_ad to be True"
        )
    checks = ["vjp"] * backward + ["jvp"] * forward + ["adjoint"] * (forward and backward)
    return [*checks, *["undefined_grad"] * undefined, *["batched_grad"] * batched, "dtype"]


def _verdict(report: Report, problems: list[str], notes: list[str], raise_exception: bool) -> bool:
    __tracebackhide__ = True
    if report.passed and not problems:
        return True
    if not raise_exception:
        return False
    raise _failure_class()(report, [*problems, *notes])


@functools.cache
def _failure_class() -> Callable[[Report, list[str]], GradientError]:
    """A GradientError that is torch's GradcheckError too (made once torch is in use), so
    that both `pytest.raises(AssertionError)` and `except GradcheckError` keep working."""
    # `torch.autograd.gradcheck` the attribute is the function; the module holds the error
    torch_error = importlib.import_module("torch.autograd.gradcheck").GradcheckError

    class TorchGradcheckError(GradientError, torch_error):  # type: ignore[misc, valid-type]
        def __init__(self, report: Report, extra: list[str]) -> None:
            GradientError.__init__(self, report)
            self.extra = extra

        def __str__(self) -> str:
            return "\n".join([GradientError.__str__(self), *self.extra])

    TorchGradcheckError.__module__ = __name__
    return TorchGradcheckError


def _grad_dtype_problems(
    func: Callable[..., Any], args: tuple[Any, ...], wrt: list[int]
) -> list[str]:
    """torch's check_grad_dtypes: each gradient has its input's dtype and device."""
    import torch

    with torch.enable_grad():
        copies = list(args)
        for i in wrt:
            copies[i] = args[i].detach().clone().requires_grad_(True)
        outputs = [o for o in _flat_tensors(func(*copies)) if o.requires_grad]
        if not outputs:
            return []
        grads = torch.autograd.grad(
            outputs,
            [copies[i] for i in wrt],
            [torch.ones_like(o) for o in outputs],
            allow_unused=True,
        )
    return [
        f"the gradient of input[{i}] has dtype {g.dtype} on {g.device}, but the input is "
        f"{args[i].dtype} on {args[i].device}"
        for i, g in zip(wrt, grads, strict=True)
        if g is not None and (g.dtype != args[i].dtype or g.device != args[i].device)
    ]


def _flat_tensors(result: Any) -> list[torch.Tensor]:
    import torch

    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (tuple, list)):
        return [t for r in result for t in _flat_tensors(r)]
    return []


def _gradient_function(
    func: Callable[..., Any], wrt: list[int], grad_outputs: Any
) -> Callable[..., tuple[torch.Tensor, ...]]:
    """x ↦ Jᵀ·grad_outputs as a differentiable torch function of the same inputs."""
    import torch

    given = None if grad_outputs is None else _as_tuple(grad_outputs)

    def gradient(*args: Any) -> tuple[torch.Tensor, ...]:
        with torch.enable_grad():
            live = list(args)
            for i in wrt:  # a point of its own where the caller does not differentiate it
                if not args[i].requires_grad:
                    live[i] = args[i].detach().requires_grad_(True)
            outputs = [o for o in _flat_tensors(func(*live)) if o.requires_grad]
            cotangents = _cotangents(outputs, given)
            grads = torch.autograd.grad(
                outputs, [live[i] for i in wrt], cotangents, create_graph=True, allow_unused=True
            )
        return tuple(
            torch.zeros_like(live[i]) if g is None else g for i, g in zip(wrt, grads, strict=True)
        )

    gradient.__qualname__ = f"gradgradcheck({getattr(func, '__qualname__', repr(func))})"
    return gradient


def _cotangents(outputs: list[torch.Tensor], given: tuple[Any, ...] | None) -> list[torch.Tensor]:
    """The user's grad_outputs in each output's dtype, or seeded random ones (like torch's)."""
    import torch

    if given is not None:
        if len(given) != len(outputs):
            raise UsageError(
                f"grad_outputs has {len(given)} tensors for {len(outputs)} differentiable outputs"
            )
        return [
            torch.as_tensor(g, dtype=o.dtype, device=o.device).detach()
            for g, o in zip(given, outputs, strict=True)
        ]
    rng = np.random.default_rng(GRAD_OUTPUTS_SEED)
    return [
        torch.as_tensor(rng.standard_normal(tuple(o.shape)), dtype=o.dtype, device=o.device)
        for o in outputs
    ]
