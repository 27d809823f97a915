"""PyTorch: functions of tensors and `torch.nn.Module`s, checked on float64 copies.

`bind` decides *what* is checked and builds a `call(pieces)` that runs the user's code with the
checked tensors replaced by `pieces`; `_torch_flat.TorchFlat` turns that into the flat float64
interface. Nothing of the user's is touched: inputs, pass-through tensors and keyword tensors
are promoted to float64 copies, a module is deep-copied (then evaluated with
`torch.func.functional_call`), autograd is driven with `torch.autograd.grad` (never `.backward`,
so no `.grad` field changes), the torch RNG is never read or seeded, and the default dtype is
switched to float64 only while user code runs and always restored.

Choices worth knowing (stated in notes or errors when they apply):
- Only floating-point tensors are differentiated; integer/bool tensors and Python numbers pass
  through unchanged. Integer outputs (e.g. the indices of `torch.max(x, dim)`) are left out.
- `requires_grad`: with `wrt=None` every float tensor is checked, whatever its flag (the check
  runs on copies). With an explicit `wrt`, if the user marked some inputs requires_grad=True,
  asking for one they left at False is taken as a mistake and raises UsageError; when no
  input is marked, the flags carry no intent and `wrt` is obeyed.
- Modules: `wrt` is "all" (default: float inputs and trainable parameters), "params",
  "inputs" or input indices. Frozen parameters (requires_grad=False) and buffers are promoted
  to float64 but held constant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .._errors import UsageError
from . import Adapter, Differentiable, Leaf, Unsupported, Wrt, leaves_of, select_positions
from ._numpy import validate_point
from ._structure import flatten, unflatten
from ._torch_flat import Hooks, TorchFlat, float64_default

if TYPE_CHECKING:
    import torch

Call = Callable[[Sequence["torch.Tensor"]], Any]


def is_tensor(obj: object) -> bool:
    import torch

    return isinstance(obj, torch.Tensor)


def dtype_name(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def describe(obj: object) -> str:
    """ "float32 tensor of shape (3, 2)", "int", …: for messages."""
    if is_tensor(obj):
        return f"{dtype_name(obj)} tensor of shape {tuple(obj.shape)}"  # type: ignore
    return type(obj).__name__


def is_float_tensor(obj: object) -> bool:
    return is_tensor(obj) and obj.is_floating_point()  # type: ignore[attr-defined]


def validate_tensor(name: str, tensor: torch.Tensor) -> None:
    """Reject tensors no float64 copy can be made of: meta/MPS, sparse, complex, quantized.

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
    if tensor.is_complex():
        raise UsageError(
            f"{name} is complex ({dtype_name(tensor)}): complex inputs are not "
            "supported; check the real and imaginary parts as separate real inputs"
        )
    if tensor.is_quantized:
        raise UsageError(f"{name} is quantized: pass a dequantized float tensor")


def promote(obj: Any) -> Any:
    """Float tensors as float64 detached copies, other tensors as copies, through containers."""
    import torch

    if is_tensor(obj):
        copy = obj.detach()
        return copy.to(torch.float64, copy=True) if obj.is_floating_point() else copy.clone()
    return _map(obj, promote)


def detached(obj: Any) -> Any:
    """Detached copies in the user's own dtypes (for the dtype audit), through containers."""
    return obj.detach().clone() if is_tensor(obj) else _map(obj, detached)


def _map(obj: Any, fn: Callable[[Any], Any]) -> Any:
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(fn(item) for item in obj)
    if isinstance(obj, list):
        return [fn(item) for item in obj]
    if isinstance(obj, dict):
        return {key: fn(value) for key, value in obj.items()}
    return obj


class Outputs:
    """The float leaves of fn's result: which are checked, their names, how to flatten them."""

    def __init__(self, template: Any) -> None:
        named = flatten(template, "output", is_tensor)
        self.template, self.keep, triples, self.notes = template, [], [], []
        self.eps = float(np.finfo(np.float64).eps)
        for name, value in named:
            if is_tensor(value) and value.is_complex():
                raise UsageError(
                    f"{name} is complex ({dtype_name(value)}): only real outputs are checked"
                )
            floating = is_float_tensor(value) or (isinstance(value, float))
            self.keep.append(floating)
            if not floating:
                self.notes.append(f"{name} is {describe(value)}: not differentiated")
                continue
            if is_tensor(value):
                self.eps = max(self.eps, _eps_of(value))
            triples.append((name, tuple(np.shape(value)), describe_dtype(value)))
        self.leaves: tuple[Leaf, ...] = leaves_of(triples)
        if not sum(leaf.size for leaf in self.leaves):
            raise UsageError(
                "the function has no non-empty floating-point output to "
                f"differentiate (it returned {describe(template)})"
            )
        self.m = sum(leaf.size for leaf in self.leaves)

    def flat(self, result: Any) -> torch.Tensor:
        """The checked leaves of a result, as one 1-D float64 tensor (differentiable)."""
        import torch

        named = flatten(result, "output", is_tensor)
        if len(named) != len(self.keep):
            raise UsageError(
                "the function returned a different output structure at another "
                f"point ({len(named)} leaves instead of {len(self.keep)})"
            )
        parts = [
            (value if is_tensor(value) else torch.tensor(float(value)))
            .to(torch.float64)
            .reshape(-1)
            for (_, value), keep in zip(named, self.keep, strict=True)
            if keep
        ]
        y = parts[0] if len(parts) == 1 else torch.cat(parts)
        if y.shape != (self.m,):
            raise UsageError(
                f"the function returned {y.shape[0]} output values at another "
                f"point instead of {self.m}"
            )
        return y

    def native(self, flat: np.ndarray, device: Any) -> Any:
        """A flat output-sized vector in the structure of fn's result, as float64 tensors."""
        import torch

        named = flatten(self.template, "output", is_tensor)
        parts, leaves = [], iter(self.leaves)
        for (_, value), keep in zip(named, self.keep, strict=True):
            if not keep:
                parts.append(value)
                continue
            leaf = next(leaves)
            chunk = flat[leaf.offset : leaf.offset + leaf.size].reshape(leaf.shape)
            parts.append(torch.as_tensor(chunk.copy(), dtype=torch.float64, device=device))
        return unflatten(self.template, parts, is_tensor)


def _eps_of(tensor: torch.Tensor) -> float:
    import torch

    return float(torch.finfo(tensor.dtype).eps)


def describe_dtype(value: Any) -> str:
    return dtype_name(value) if is_tensor(value) else "float64"


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
            validate_point(name, _as_numpy(tensor))
        inputs = leaves_of(
            [
                (name, tuple(t.shape), dtype_name(t))
                for name, t in zip(self.names, self.originals, strict=True)
            ]
        )
        x0 = np.concatenate([_as_numpy(t).reshape(-1) for t in self.originals])
        device = self.originals[0].device
        call, spans = self.call, [(leaf.offset, leaf.size, leaf.shape) for leaf in inputs]

        def split(x: np.ndarray) -> list[torch.Tensor]:
            return [
                torch.as_tensor(
                    x[o : o + s].reshape(shape).copy(), dtype=torch.float64, device=device
                )
                for o, s, shape in spans
            ]

        with float64_default():
            outputs = Outputs(call(split(x0)))

        def flat(xt: torch.Tensor) -> torch.Tensor:
            # clone: user code may write into its inputs; xt must stay the point asked for.
            return outputs.flat(
                call([xt[o : o + s].reshape(shape).clone() for o, s, shape in spans])
            )

        def batched(xt: torch.Tensor) -> torch.Tensor:  # views; TorchFlat guards the input
            return outputs.flat(call([xt[o : o + s].reshape(shape) for o, s, shape in spans]))

        hooks = Hooks(
            inputs=lambda x: self.args_of(split(np.asarray(x, dtype=np.float64))),
            outputs=lambda vec: outputs.native(np.asarray(vec, dtype=np.float64), device),
            tangents=lambda vec: tuple(split(np.asarray(vec, dtype=np.float64))),
        )
        native = None if self.native_call is None else self._native(outputs)
        function = TorchFlat(
            flat,
            batched,
            x0,
            inputs,
            outputs.leaves,
            device=device,
            eps=outputs.eps,
            notes=(*self.notes, *outputs.notes),
            native=native,
            hooks=hooks,
        )
        # Try vmap once now, so that a fallback's reason is in `notes` before anyone reads them.
        function.values(x0[None])
        return function

    def _native(self, outputs: Outputs) -> Callable[[np.ndarray], np.ndarray | None]:
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
            with torch.enable_grad():
                pieces = [t.detach().clone().requires_grad_(True) for t in self.originals]
                named = flatten(native_call(pieces), "output", is_tensor)
                kept = [value for (_, value), keep in zip(named, outputs.keep, strict=True) if keep]
                ys, cotangents = [], []
                for value, leaf in zip(kept, outputs.leaves, strict=True):
                    if is_tensor(value) and value.requires_grad:
                        chunk = u[leaf.offset : leaf.offset + leaf.size].reshape(leaf.shape)
                        ys.append(value)
                        cotangents.append(
                            torch.as_tensor(chunk.copy(), device=value.device).to(value.dtype)
                        )
                grads = (
                    torch.autograd.grad(ys, pieces, cotangents, allow_unused=True)
                    if ys
                    else (None,) * len(pieces)
                )
            return np.concatenate(
                [
                    np.zeros(p.numel()) if g is None else _as_numpy(g).reshape(-1)
                    for p, g in zip(pieces, grads, strict=True)
                ]
            )

        return native_vjp


def _as_numpy(tensor: torch.Tensor) -> np.ndarray:
    import torch

    return np.asarray(tensor.detach().cpu().to(torch.float64).numpy())


def requires_grad_rule(positions: Sequence[int], args: Sequence[Any], wrt: Wrt) -> list[str]:
    """Apply the requires_grad choice (module docstring); returns notes.

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


def bind_function(
    fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
) -> Differentiable:
    """A function of tensors, checked with respect to the positional inputs `wrt` selects."""
    for i, arg in enumerate(args):
        if is_tensor(arg):
            validate_tensor(f"input[{i}]", arg)
    positions = select_positions(
        wrt, [is_float_tensor(a) for a in args], [describe(a) for a in args]
    )
    notes = requires_grad_rule(positions, args, wrt)
    notes += [
        f"input[{i}] ({describe(a)}) is not differentiated"
        + ("" if is_float_tensor(a) else ": only floating-point tensors are")
        for i, a in enumerate(args)
        if is_tensor(a) and i not in positions
    ]
    base, kwargs64 = [promote(a) for a in args], promote(kwargs)

    def args_of(pieces: Sequence[torch.Tensor], start: Sequence[Any] = base) -> tuple[Any, ...]:
        return substitute(start, positions, pieces)

    def call(pieces: Sequence[torch.Tensor]) -> Any:
        return fn(*args_of(pieces), **kwargs64)

    native_call = None
    if has_low_precision((args, kwargs)):
        own_args, own_kwargs = [detached(a) for a in args], detached(kwargs)

        def native_call(pieces: Sequence[torch.Tensor]) -> Any:
            return fn(*args_of(pieces, own_args), **own_kwargs)

    names, originals = [f"input[{i}]" for i in positions], [args[i] for i in positions]
    try:
        return TorchBinding(names, originals, call, native_call, args_of, notes).differentiable()
    except RuntimeError as error:
        if native_call is None or not _dtype_clash(error):
            raise
        own_dtype, clash = native_call, error

    def cast_call(pieces: Sequence[torch.Tensor]) -> Any:
        # A differentiable cast: autograd carries the float64 point into the user's dtype.
        return own_dtype([p.to(t.dtype) for p, t in zip(pieces, originals, strict=True)])

    reason = str(clash).splitlines()[0]
    dtypes = ", ".join(sorted({dtype_name(t) for t in originals}))
    notes.append(
        f"the function cannot run on float64 copies ({type(clash).__name__}: {reason}), most "
        "likely because it uses a tensor or module from outside its arguments: it is checked "
        f"in its own dtype ({dtypes}), with that dtype's round-off. Pass the module to "
        "gradcheck (or make the closure float64) for a float64 check"
    )
    return TorchBinding(names, originals, cast_call, None, args_of, notes).differentiable()


def _dtype_clash(error: RuntimeError) -> bool:
    """Whether an error looks like float64 copies meeting the user's float32 tensors."""
    message = str(error)
    return (
        "dtype" in message
        or "scalar type" in message
        or ("Double" in message and ("Float" in message or "Half" in message))
    )


def has_low_precision(obj: Any) -> bool:
    """Whether a container holds a float tensor below float64 (so the dtype audit applies)."""
    import torch

    if is_float_tensor(obj):
        return bool(obj.dtype != torch.float64)
    if isinstance(obj, Mapping):
        return any(has_low_precision(v) for v in obj.values())
    if isinstance(obj, (tuple, list)):
        return any(has_low_precision(v) for v in obj)
    return False


class TorchAdapter(Adapter):
    """torch tensors (and NumPy arrays under framework="torch") and torch.nn.Modules."""

    framework: ClassVar[str] = "torch"
    module: ClassVar[str] = "torch"

    def __init__(self) -> None:
        import torch  # deferred on purpose: see the adapters/__init__.py docstring

        self._torch = torch

    def handles(self, obj: object) -> bool:
        return isinstance(obj, (self._torch.Tensor, self._torch.nn.Module))

    def bind(
        self, fn: Callable[..., Any], inputs: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
    ) -> Differentiable:
        # NumPy arrays reach here when the user forces framework="torch": make them tensors.
        args = [
            self._torch.from_numpy(np.array(a)) if isinstance(a, np.ndarray) else a for a in inputs
        ]
        kwargs = dict(kwargs or {})
        if isinstance(fn, self._torch.nn.Module):
            from ._torch_module import bind_module

            return bind_module(fn, args, kwargs, wrt)
        return bind_function(fn, args, kwargs, wrt)
