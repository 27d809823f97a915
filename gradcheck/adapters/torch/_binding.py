"""What functions and modules share: the checked tensors, their copies, the flat view.

`bind_function` (in `__init__`) and `bind_module` (in `_module`) decide which tensors are
checked and how to run the user's code with those replaced; `TorchBinding` turns that decision
into a `TorchFlat` and `Outputs` names and flattens what the code returns.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._differentiable import AtPoint, Differentiable, Leaf, Unsupported, leaves_of
from ..._errors import UsageError
from .._common import (
    Wrt,
    check_output_size,
    describe,
    flatten,
    part,
    unflatten,
)
from ._flat import ByInput, Hooks, Structure, TorchFlat
from ._leaves import Placement, join, leaf_triples
from ._scope import RandomStream, float64_default, real_parts

if TYPE_CHECKING:
    import torch

Call = Callable[[Sequence["torch.Tensor"]], Any]


class TorchBinding:
    """What `bind` decided: the checked tensors and how to run the user's code around them.

    Args:
        names: report names of the checked tensors ("input[0]", "params['fc.weight']").
        originals: the user's checked tensors (read only).
        call: runs the code on float64 copies with the checked tensors replaced by pieces.
        native_call: the same in the user's own dtypes, or None when all is float64 already.
        args_of: the positional arguments fn sees for given pieces (for `native_inputs`).
        notes: sentences for the report.
    """

    def __init__(
        self,
        names: Sequence[str],
        originals: Sequence[torch.Tensor],
        call: Call,
        native_call: Call | None,
        args_of: Callable[[Sequence[torch.Tensor]], tuple[Any, ...]],
        notes: Sequence[str],
    ) -> None:
        self.names, self.originals, self.call = list(names), list(originals), call
        self.native_call, self.args_of, self.notes = native_call, args_of, list(notes)

    def differentiable(self) -> Differentiable:
        """The flat float64 view of this binding (evaluates the code once at x0)."""
        import torch

        for name, tensor in zip(self.names, self.originals, strict=True):
            validate_tensor(name, tensor)
        placement = Placement(self.names, self.originals)
        inputs, x0 = placement.leaves, placement.x0
        device = self.originals[0].device
        call = self.call

        def split(x: np.ndarray, tangent: bool = False) -> list[torch.Tensor]:
            xt = torch.tensor(np.asarray(x, dtype=np.float64), device=device)
            return placement.tensors(xt, tangent=tangent)

        def parts(xt: torch.Tensor) -> list[torch.Tensor]:
            # clone: user code may write into its inputs; xt must stay the point asked for.
            return outputs.parts(call([p.clone() for p in placement.tensors(xt)]))

        stream = RandomStream()
        with float64_default(stream), torch.enable_grad():
            start = torch.tensor(x0, dtype=torch.float64, device=device).requires_grad_(True)
            outputs = Outputs(call([p.clone() for p in placement.tensors(start)]))

        def flat(xt: torch.Tensor) -> torch.Tensor:
            return outputs.concat(parts(xt))

        def batched(xt: torch.Tensor) -> torch.Tensor:  # views; TorchFlat guards the input
            return outputs.flat(call(placement.tensors(xt)))

        def by_input(*pieces: torch.Tensor) -> torch.Tensor:  # the same, a piece per tensor
            return outputs.flat(call(placement.tensors_of(pieces)))

        hooks = Hooks(
            inputs=lambda x: self.args_of(split(x)),
            outputs=lambda vec: outputs.native(np.asarray(vec, dtype=np.float64), device),
            tangents=lambda vec: tuple(split(vec, tangent=True)),
            per_input=placement.per_input,
        )
        notes = placement.notes
        native = None if self.native_call is None else self._native(outputs, placement, stream)
        function = TorchFlat(
            flat,
            batched,
            x0,
            inputs,
            outputs.leaves,
            device=device,
            eps=outputs.eps,
            notes=(*self.notes, *notes, *outputs.notes),
            native=native,
            hooks=hooks,
            structure=Structure(parts, tuple(outputs.names)),
            stream=stream,
            by_input=ByInput(by_input, placement.ranges) if len(placement.ranges) > 1 else None,
        )
        # The structure call above is the preflight's single evaluation at x0.
        flat_template = outputs.concat(outputs.parts(outputs.template)).detach().cpu().numpy()
        function.at_point = AtPoint(np.asarray(flat_template, dtype=np.float64))
        return function

    def _native(
        self, outputs: Outputs, placement: Placement, stream: RandomStream
    ) -> Callable[[np.ndarray], np.ndarray | None]:
        """J(x0)^T u in the user's dtypes: the user's gradient, for the dtype audit."""
        import torch

        native_call = self.native_call
        assert native_call is not None

        def native_vjp(u: np.ndarray) -> np.ndarray | None:
            try:
                return own_dtype_vjp(u)
            except Exception as error:  # the audit is informative: skip it
                raise Unsupported(
                    f"the code does not run in the user's own dtypes "
                    f"({type(error).__name__}: {error})"
                ) from error

        def own_dtype_vjp(u: np.ndarray) -> np.ndarray:
            with torch.enable_grad(), stream.active():
                pieces = [t.detach().clone().requires_grad_(True) for t in self.originals]
                named = flatten(native_call(pieces), "output", is_tensor)
                kept = [value for (_, value), keep in zip(named, outputs.keep, strict=True) if keep]
                ys, cotangents = [], []
                for value, group in zip(kept, outputs.groups, strict=True):
                    if is_tensor(value) and value.requires_grad:
                        ys.append(value)
                        (cotangent,) = join(
                            [torch.as_tensor(part(u, leaf).copy()) for leaf in group], [value]
                        )
                        cotangents.append(cotangent.to(value.device, value.dtype))
                grads = (
                    torch.autograd.grad(ys, pieces, cotangents, allow_unused=True)
                    if ys
                    else (None,) * len(pieces)
                )
            return placement.flat(grads)

        return native_vjp


class Outputs:
    """The float leaves of fn's result: which are checked, their names, how to flatten them.

    A complex output is two leaves, "<name>.real" and "<name>.imag" (`groups` keeps them
    together per output), as torch.autograd.gradcheck checks it: two real outputs.
    """

    def __init__(self, template: Any) -> None:
        named = flatten(template, "output", is_tensor)
        self.template, self.keep, triples, self.notes = template, [], [], []
        self.eps = float(np.finfo(np.float64).eps)
        # Evaluated with inputs that require grad: an output autograd does not differentiate
        # (saved mean/rstd, mark_non_differentiable) is left out as torch's checker leaves it
        # out, unless every output is cut, which is the leak the check must show.
        connected = any(is_float_tensor(v) and v.requires_grad for _, v in named)
        sizes, self.names = [], []
        for name, value in named:
            floating = is_float_tensor(value) or isinstance(value, float)
            cut = floating and connected and not (is_tensor(value) and value.requires_grad)
            self.keep.append(floating and not cut)
            if not floating:
                self.notes.append(f"{name} is {describe_tensor(value)}: not differentiated")
                continue
            if cut:
                self.notes.append(
                    f"{name} does not require grad while other outputs do (autograd does not "
                    "differentiate it: saved statistics, mark_non_differentiable): left out, "
                    "as torch.autograd.gradcheck leaves it out"
                )
                continue
            if is_tensor(value):
                self.eps = max(self.eps, _eps_of(value))
                parts = leaf_triples(name, value)
                if value.is_complex():
                    self.notes.append(
                        f"complex {name} checked as its real and imaginary parts, as "
                        "torch.autograd.gradcheck checks it"
                    )
            else:
                parts = [(name, (), "float64")]
            triples += parts
            sizes.append(len(parts))
            self.names.append(name)
        self.leaves: tuple[Leaf, ...] = leaves_of(triples)
        starts = itertools.accumulate(sizes, initial=0)
        self.groups = [self.leaves[a:b] for a, b in itertools.pairwise(starts)]
        self.m = sum(leaf.size for leaf in self.leaves)
        self._single = is_tensor(template) and self.keep == [True]

    def parts(self, result: Any) -> list[torch.Tensor]:
        """The checked outputs of a result, one tensor each, as the code returned them."""
        import torch

        if self._single and is_tensor(result):  # the common case, at every evaluation
            return [result]
        named = flatten(result, "output", is_tensor)
        if len(named) != len(self.keep):
            raise UsageError(
                "the function returned a different output structure at another "
                f"point ({len(named)} leaves instead of {len(self.keep)})"
            )
        return [
            value if is_tensor(value) else torch.tensor(float(value))
            for (_, value), keep in zip(named, self.keep, strict=True)
            if keep
        ]

    def concat(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """Checked outputs (see `parts`) as one 1-D float64 tensor (differentiable)."""
        import torch

        if len(parts) == 1 and parts[0].dtype == torch.float64:  # no parts, no copy
            y = parts[0].reshape(-1)
        else:
            pieces = [p.to(torch.float64).reshape(-1) for t in parts for p in real_parts(t)]
            y = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
        check_output_size(y.shape[0], self.m)
        return y

    def flat(self, result: Any) -> torch.Tensor:
        """The checked leaves of a result, as one 1-D float64 tensor (differentiable)."""
        return self.concat(self.parts(result))

    def native(self, flat: np.ndarray, device: Any) -> Any:
        """A flat output-sized vector in the structure of fn's result, as float64 tensors."""
        import torch

        named = flatten(self.template, "output", is_tensor)
        parts, groups = [], iter(self.groups)
        for (_, value), keep in zip(named, self.keep, strict=True):
            if not keep:
                parts.append(value)
                continue
            chunks = [
                torch.as_tensor(part(flat, leaf).copy(), dtype=torch.float64, device=device)
                for leaf in next(groups)
            ]
            parts += join(chunks, [value])
        return unflatten(self.template, parts, is_tensor)


# -- helpers --------------------------------------------------------------------------------


def is_tensor(obj: object) -> bool:
    import torch

    return isinstance(obj, torch.Tensor)


def is_float_tensor(obj: object) -> bool:
    """A tensor that can be differentiated: floating point or complex (as its two parts)."""
    return is_tensor(obj) and (obj.is_floating_point() or obj.is_complex())  # type: ignore[attr-defined]


def describe_tensor(obj: object) -> str:
    """ "float32 tensor of shape (3, 2)", or the type of anything else ("int"): for messages."""
    return describe(obj, "tensor") if is_tensor(obj) else type(obj).__name__


def validate_tensor(name: str, tensor: torch.Tensor) -> None:
    """Reject tensors no float64 copy can be made of: meta/MPS, sparse, quantized.

    Raises:
        UsageError: naming the tensor, the problem and the fix.
    """
    import torch

    device = tensor.device.type
    if device == "meta":
        raise UsageError(
            f"{name} is on the meta device: it holds no values to differentiate at; "
            "create it on a real device (e.g. device='cpu')"
        )
    if device == "mps":
        raise UsageError(f"{name} is on the MPS device, which has no float64; move it with .cpu()")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"{name} is on CUDA, which this machine lacks; move it with .cpu()")
    if tensor.layout != torch.strided:
        raise UsageError(
            f"{name} is a {tensor.layout} tensor: only dense (strided) tensors are "
            "supported; pass tensor.to_dense()"
        )
    if tensor.is_quantized:
        raise UsageError(f"{name} is quantized: pass a dequantized float tensor")


def validate_tensors(args: Sequence[Any]) -> None:
    """`validate_tensor` on every tensor among the positional inputs."""
    for i, arg in enumerate(args):
        if is_tensor(arg):
            validate_tensor(f"input[{i}]", arg)


def promote(obj: Any) -> Any:
    """Float (complex) tensors as float64 (complex128) detached copies, other tensors as
    copies, through containers."""
    import torch

    if is_tensor(obj):
        copy = obj.detach()
        if obj.is_complex():
            return copy.to(torch.complex128, copy=True)
        return copy.to(torch.float64, copy=True) if obj.is_floating_point() else copy.clone()
    return _map(obj, promote)


def detached(obj: Any) -> Any:
    """Detached copies in the user's own dtypes (for the dtype audit), through containers."""
    return obj.detach().clone() if is_tensor(obj) else _map(obj, detached)


def has_low_precision(obj: Any) -> bool:
    """Whether a container holds a float tensor below float64 (so the dtype audit applies)."""
    import torch

    if is_float_tensor(obj):
        return bool(obj.dtype not in (torch.float64, torch.complex128))
    if isinstance(obj, Mapping):
        return any(has_low_precision(v) for v in obj.values())
    if isinstance(obj, (tuple, list)):
        return any(has_low_precision(v) for v in obj)
    return False


def requires_grad_rule(positions: Sequence[int], args: Sequence[Any], wrt: Wrt) -> list[str]:
    """Apply the requires_grad choice (see the package docstring); returns notes.

    Raises:
        UsageError: an explicit `wrt` names an input left at requires_grad=False while others
            were marked requires_grad=True.
    """
    marked = [i for i, a in enumerate(args) if is_tensor(a) and a.requires_grad]
    if not marked:
        return []
    unmarked = [i for i in positions if not args[i].requires_grad]
    if wrt is not None and not isinstance(wrt, str) and unmarked:
        i = unmarked[0]
        raise UsageError(
            f"wrt asks for input[{i}], which has requires_grad=False while input[{marked[0]}] "
            f"has requires_grad=True; call input[{i}].requires_grad_() or leave it out of wrt"
        )
    return [
        f"input[{i}] has requires_grad=False but is differentiated (on a float64 copy); "
        "pass wrt=... to leave it out"
        for i in unmarked
    ]


def substitute(
    args: Sequence[Any], positions: Sequence[int], pieces: Sequence[Any]
) -> tuple[Any, ...]:
    """The positional arguments with the checked ones (at `positions`) replaced by pieces."""
    full = list(args)
    for position, piece in zip(positions, pieces, strict=True):
        full[position] = piece
    return tuple(full)


def _map(obj: Any, fn: Callable[[Any], Any]) -> Any:
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(fn(item) for item in obj)
    if isinstance(obj, list):
        return [fn(item) for item in obj]
    if isinstance(obj, dict):
        return {key: fn(value) for key, value in obj.items()}
    return obj


def _eps_of(tensor: torch.Tensor) -> float:
    import torch

    return float(torch.finfo(tensor.dtype).eps)
