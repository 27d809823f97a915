"""Undefined output gradients, as torch.autograd.gradcheck's check_undefined_grad runs them.

torch marks an output gradient undefined (None to a custom Function that does not
materialize grads) when nobody differentiates that output; backward formulas must treat it as
zeros. Numbers alone do not show a backward that gets this wrong, because the flat check always
defines every output's gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._differentiable import Leaf, Unsupported, locate
from .._common import first_line

if TYPE_CHECKING:
    import torch

Parts = Callable[["torch.Tensor"], list["torch.Tensor"]]


def undefined_grad(
    parts: Parts, names: Sequence[str], start: Callable[[], torch.Tensor], inputs: Sequence[Leaf]
) -> str | None:
    """The backward with output gradients undefined, as torch's check_undefined_grad runs
    it: every output's at once, then (several outputs) each output's alone; and each
    output's backward alone (the others undefined, as torch's per-output Jacobian runs it)
    against the same cotangent with the others zero.

    torch marks a gradient undefined with its UndefinedGrad node; a backward must treat it
    as zeros (or return undefined gradients), and must not drop a defined gradient beside
    it (native_group_norm in torch 2.13 ignores mean's gradient when the output's is
    undefined). Returns what went wrong, or None.

    Args:
        parts: the flat input -> the checked outputs, one by one.
        names: their report names.
        start: a fresh flat float64 point x0 that requires grad.
        inputs: the leaves of the flat input, to name an entry.

    Raises:
        Unsupported: no output requires grad (nothing to run a backward through).
    """
    xt = start()
    outs = parts(xt)
    picked = [i for i, o in enumerate(outs) if o.requires_grad]
    if not picked:
        raise Unsupported("no output requires grad")
    if len(picked) == 1:  # one case, on this forward pass (its graph is needed no further)
        return _zero_when_undefined(parts, names, start, inputs, picked, (xt, outs))
    problem = _zero_when_undefined(parts, names, start, inputs, picked)
    if problem is None:
        problem = _alone_equals_zero_padded(names, xt, outs, inputs, picked)
    return problem


def _zero_when_undefined(
    parts: Parts,
    names: Sequence[str],
    start: Callable[[], torch.Tensor],
    inputs: Sequence[Leaf],
    picked: list[int],
    forward: tuple[torch.Tensor, list[torch.Tensor]] | None = None,
) -> str | None:
    """Each case on a forward pass of its own (`forward`, one already made, for the first)."""
    import torch

    undefine: Any = torch._C._functions.UndefinedGrad  # what torch's own checker uses
    cases: list[tuple[str, set[int]]] = [("every output's gradient", set(picked))]
    if len(picked) > 1:
        cases += [(f"the gradient of {names[i]}", {i}) for i in picked]
    for k, (what, which) in enumerate(cases):
        if k == 0 and forward is not None:
            xt, outs = forward
        else:
            xt = start()
            outs = parts(xt)
        ys = [undefine()(outs[i]) if i in which else outs[i] for i in picked]
        try:
            (g,) = torch.autograd.grad(ys, xt, [torch.zeros_like(y) for y in ys], allow_unused=True)
        except Exception as error:
            return (
                f"with {what} undefined (None), the backward raised "
                f"{first_line(error)}: an undefined output gradient must count as zeros"
            )
        if g is not None and bool((g != 0).any()):
            grad = _numpy(g)
            worst = int(np.argmax(np.abs(np.nan_to_num(grad, nan=np.inf))))
            return (
                f"with {what} undefined (None) and the others zero, the backward "
                f"returned nonzero input gradients (up to {grad[worst]:.3g} at "
                f"{locate(inputs, worst)}): an undefined output gradient must "
                "count as zeros"
            )
    return None


def _alone_equals_zero_padded(
    names: Sequence[str],
    xt: torch.Tensor,
    outs: list[torch.Tensor],
    inputs: Sequence[Leaf],
    picked: list[int],
) -> str | None:
    import torch

    generator = torch.Generator(device=xt.device).manual_seed(0)
    for i in picked:
        u = torch.randn(outs[i].shape, dtype=outs[i].dtype, device=xt.device, generator=generator)
        zeros = [u if j == i else torch.zeros_like(outs[j]) for j in picked]
        try:
            (alone,) = torch.autograd.grad(outs[i], xt, u, True, allow_unused=True)
        except Exception as error:
            return (
                f"with only {names[i]}'s gradient defined (the others "
                f"undefined), the backward raised {first_line(error)}"
            )
        (padded,) = torch.autograd.grad(
            [outs[j] for j in picked], xt, zeros, True, allow_unused=True
        )
        a, b = (np.zeros(xt.numel()) if g is None else _numpy(g) for g in (alone, padded))
        scale = float(np.max(np.abs(b), initial=0.0)) + 1e-300
        if not np.allclose(a, b, rtol=1e-9, atol=1e-9 * scale, equal_nan=True):
            worst = int(np.argmax(np.abs(a - b)))
            return (
                f"with only {names[i]}'s gradient defined (the others "
                f"undefined), the backward returns {a[worst]:.6g} at "
                f"{locate(inputs, worst)} where the same gradient with the others "
                f"zero gives {b[worst]:.6g}: an undefined output gradient must count as "
                "zeros, not change the defined ones"
            )
    return None


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return np.asarray(tensor.detach().cpu().numpy(), dtype=np.float64)
