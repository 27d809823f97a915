"""torch.nn.Module: inputs and parameters as checked tensors, on a float64 deep copy.

The module is deep-copied and the copy converted to float64; every evaluation goes through
`torch.func.functional_call`, which substitutes the checked parameters (and float64 copies of
the rest) for one call. The user's module, its parameters, `.grad` fields, buffers and
train/eval state are never written: the copy keeps the user's train/eval flag, so dropout in
train mode stays random (and the checker reports it as nondeterministic).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..._differentiable import Differentiable
from ..._errors import UsageError
from .._common import Wrt, select_positions
from ._binding import (
    TorchBinding,
    describe_tensor,
    detached,
    has_low_precision,
    is_float_tensor,
    promote,
    requires_grad_rule,
    substitute,
    validate_tensor,
    validate_tensors,
)

if TYPE_CHECKING:
    import torch

MODES = ("all", "params", "inputs")


def _copy(module: torch.nn.Module, notes: list[str]) -> torch.nn.Module:
    """A deep copy to evaluate (functional_call swaps tensors on it, not on the user's module).

    A module that cannot be deep-copied (e.g. it holds non-leaf tensors) is used as is:
    functional_call substitutes every parameter and buffer for the call and restores them.
    """
    try:
        return copy.deepcopy(module)
    except Exception as error:
        notes.append(
            f"the module could not be deep-copied ({type(error).__name__}: {error}); "
            "it is evaluated through torch.func.functional_call with all of its "
            "tensors substituted"
        )
        return module


def _input_positions(wrt: Wrt, args: Sequence[Any]) -> tuple[str, tuple[int, ...]]:
    """(mode, input indices) from a module's `wrt`."""
    differentiable = [is_float_tensor(a) for a in args]
    kinds = [describe_tensor(a) for a in args]
    if wrt is None or isinstance(wrt, str):
        mode = "all" if wrt is None else wrt
        if mode not in MODES:
            raise UsageError(
                f"wrt={wrt!r} is not understood for a module; use 'all', "
                "'params', 'inputs' or input indices"
            )
        if mode == "params":
            return mode, ()
        if mode == "all":
            return mode, tuple(i for i, d in enumerate(differentiable) if d)
        return mode, select_positions(None, differentiable, kinds)
    return "inputs", select_positions(wrt, differentiable, kinds)


def bind_module(
    module: torch.nn.Module, args: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
) -> Differentiable:
    """module(*args, **kwargs) checked w.r.t. its inputs and/or trainable parameters."""
    import torch
    from torch.func import functional_call

    validate_tensors(args)
    mode, positions = _input_positions(wrt, args)
    notes = requires_grad_rule(positions, args, None if isinstance(wrt, str) else wrt)
    named = dict(module.named_parameters())
    for name, tensor in [*named.items(), *module.named_buffers()]:
        validate_tensor(f"params[{name!r}]", tensor)
    checked: list[str] = []
    if mode in ("all", "params"):
        checked = [n for n, p in named.items() if p.requires_grad and p.is_floating_point()]
        notes += [
            f"params[{n!r}] has requires_grad=False (frozen): held constant"
            for n, p in named.items()
            if not p.requires_grad
        ]
        if mode == "params" and not checked:
            what = "trainable parameters (all have requires_grad=False)" if named else "parameters"
            raise UsageError(
                f"wrt='params' but {type(module).__name__} has no {what}; use wrt='inputs'"
            )
    if not positions and not checked:
        raise UsageError(
            f"nothing to differentiate: {type(module).__name__} has no trainable "
            "parameters and no floating-point input"
        )
    if module.training and any(True for _ in module.buffers()):
        notes.append(
            "the module is in train mode: buffers it updates (e.g. batch-norm running "
            "statistics) change on the float64 copy only"
        )

    model64 = _copy(module, notes)
    base = [promote(a) for a in args]
    kwargs64 = promote(kwargs)
    constants = {
        name: promote(t)
        for name, t in [*module.named_parameters(), *module.named_buffers()]
        if name not in checked
    }
    if model64 is not module:
        model64.to(torch.float64)
        for parameter in model64.parameters():  # copied .grad fields: never read, free them
            parameter.grad = None

    def args_of(pieces: Sequence[torch.Tensor], start: Sequence[Any] = base) -> tuple[Any, ...]:
        return substitute(start, positions, pieces)

    def call(pieces: Sequence[torch.Tensor]) -> Any:
        k = len(positions)
        tensors = {**constants, **dict(zip(checked, pieces[k:], strict=True))}
        return functional_call(model64, tensors, args_of(pieces[:k]), kwargs64)

    native_call = None
    low = [*args, kwargs, *named.values(), *module.buffers()]
    if has_low_precision(low):
        own_args, own_kwargs = [detached(a) for a in args], detached(kwargs)
        own_constants = {
            name: t.detach().clone()
            for name, t in [*module.named_parameters(), *module.named_buffers()]
            if name not in checked
        }
        own_model: list[torch.nn.Module] = []  # copied on first use: only the audit needs it

        def native_call(pieces: Sequence[torch.Tensor]) -> Any:
            if not own_model:
                own_model.append(_copy(module, []))
            k = len(positions)
            tensors = {**own_constants, **dict(zip(checked, pieces[k:], strict=True))}
            return functional_call(own_model[0], tensors, args_of(pieces[:k], own_args), own_kwargs)

    names = [f"input[{i}]" for i in positions] + [f"params[{n!r}]" for n in checked]
    originals = [args[i] for i in positions] + [named[n] for n in checked]
    return TorchBinding(
        names, originals, call, native_call, lambda pieces: args_of(pieces[: len(positions)]), notes
    ).differentiable()
