"""PyTorch: functions of tensors and `torch.nn.Module`s, checked on float64 copies; Keras 3
layers and models when Keras runs on the torch backend (`_keras`).

`bind` decides *what* is checked and builds a `call(pieces)` that runs the user's code with the
checked tensors replaced by `pieces` (here for functions, in `_module` for modules);
`_binding.TorchBinding` turns that into a `TorchFlat`, the flat float64 interface (`_flat`).
Nothing of the user's is touched: inputs, pass-through tensors and keyword tensors are
promoted to float64 copies, a module is deep-copied (then evaluated with
`torch.func.functional_call`), autograd is driven with `torch.autograd.grad` (never `.backward`,
so no `.grad` field changes), the user's torch RNG state is put back after every call into
their code (`_flat.RandomStream`), and the default dtype is switched to float64 only while
user code runs and always restored.

Choices worth knowing (stated in notes or errors when they apply):
- Only floating-point and complex tensors are differentiated; integer/bool tensors, Python
  values and NumPy arrays left out of `wrt` pass through unchanged. Integer outputs (the
  indices of `torch.max(x, dim)`) and outputs that do not require grad beside ones that do
  (saved mean/rstd, `mark_non_differentiable`) are left out, as torch's checker leaves them.
- Complex tensors are checked as their real and imaginary parts (`_leaves`): torch's
  conjugate Wirtinger convention, as torch.autograd.gradcheck checks it. Entries that are not
  finite (a -inf attention mask) are held constant; the check runs on the finite ones.
- `requires_grad`: with `wrt=None` every float tensor is checked, whatever its flag (the check
  runs on copies). With an explicit `wrt`, if the user marked some inputs requires_grad=True,
  asking for one they left at False is taken as a mistake and raises UsageError; when no
  input is marked, the flags carry no intent and `wrt` is obeyed.
- Modules: `wrt` is "all" (default: float inputs and trainable parameters), "params",
  "inputs" or input indices. Frozen parameters (requires_grad=False) and buffers are promoted
  to float64 but held constant.
- A closure over float32 tensors or modules cannot run on float64 copies: it is checked in
  its own dtype (`_common.retry_in_own_dtype`), and the notes say so. A `torch.compile`d
  function or module is checked through its uncompiled code (`_closure`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..._differentiable import Differentiable
from .._common import Adapter, Wrt, dtype_name, own_dtype_note, retry_in_own_dtype, select_positions
from .._keras import is_keras_layer
from .._keras_substitute import substitution_note
from ._binding import (
    TorchBinding,
    describe_tensor,
    detached,
    has_low_precision,
    is_float_tensor,
    is_tensor,
    promote,
    requires_grad_rule,
    substitute,
    validate_tensors,
)
from ._closure import Float64Clones, captured_modules, captures_low_precision, uncompiled
from ._flat import TorchFlat
from ._keras import bind_keras, keras_models_in_float64
from ._module import bind_module

if TYPE_CHECKING:
    import torch

__all__ = ["TorchAdapter", "TorchFlat"]


class TorchAdapter(Adapter):
    """torch tensors (and NumPy arrays under framework="torch") and torch.nn.Modules."""

    framework: ClassVar[str] = "torch"

    def __init__(self) -> None:
        import torch  # deferred on purpose: see the adapters/__init__.py docstring

        self._torch = torch

    def handles(self, obj: object) -> bool:
        return isinstance(obj, (self._torch.Tensor, self._torch.nn.Module))

    def substitute(self, models: Sequence[Any]) -> AbstractContextManager[None]:
        """Keras models (torch backend) a closure calls run as float64 clones meanwhile."""
        return keras_models_in_float64(models)

    def bind(
        self, fn: Callable[..., Any], inputs: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
    ) -> Differentiable:
        fn, notes = uncompiled(fn)
        if is_keras_layer(fn, "torch"):  # a torch.nn.Module, but Keras variables: see _keras
            return bind_keras(fn, inputs, dict(kwargs or {}), wrt)
        module = isinstance(fn, self._torch.nn.Module)
        args = [
            self._torch.from_numpy(np.array(a)) if _converted(a, i, len(inputs), wrt, module) else a
            for i, a in enumerate(inputs)
        ]
        kwargs = dict(kwargs or {})
        if isinstance(fn, self._torch.nn.Module):
            bound = bind_module(fn, args, kwargs, wrt)
        else:
            bound = _bind_function(fn, args, kwargs, wrt)
        substituted = substitution_note()  # models=: the closure ran float64 Keras clones
        bound.notes = (*notes, *bound.notes, *([substituted] if substituted else []))
        return bound


def _converted(arg: Any, position: int, count: int, wrt: Wrt, module: bool) -> bool:
    """Whether a NumPy input (framework="torch") becomes a tensor: every array a module gets
    (its forward takes tensors: an Embedding's index array too), and the float arrays a
    function's `wrt` checks; a function's masks, index arrays and floats left out of `wrt`
    reach it unchanged, as the user passed them."""
    if not isinstance(arg, np.ndarray):
        return False
    if module:
        return True
    if arg.dtype.kind not in "fc":
        return False
    if wrt is None or isinstance(wrt, str):
        return True
    chosen = [wrt] if isinstance(wrt, (int, np.integer)) else list(wrt)
    return any(
        isinstance(i, (int, np.integer)) and -count <= i < count and int(i) % count == position
        for i in chosen
    )


def _bind_function(
    fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
) -> Differentiable:
    """A function of tensors, checked with respect to the positional inputs `wrt` selects."""
    validate_tensors(args)
    positions = select_positions(
        wrt, [is_float_tensor(a) for a in args], [describe_tensor(a) for a in args]
    )
    notes = requires_grad_rule(positions, args, wrt)
    notes += [
        f"input[{i}] ({describe_tensor(a)}) is not differentiated"
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

    def in_own_dtype(clash: Exception) -> Differentiable:
        assert native_call is not None
        own_dtype = native_call

        def cast_call(pieces: Sequence[torch.Tensor]) -> Any:
            # A differentiable cast: autograd carries the float64 point into the user's dtype.
            return own_dtype([p.to(t.dtype) for p, t in zip(pieces, originals, strict=True)])

        cause = (
            "it uses a tensor or module from outside its arguments (pass the module to "
            "gradcheck, or make the closure float64, for a float64 check)"
        )
        note = own_dtype_note(clash, (dtype_name(t) for t in originals), cause)
        return TorchBinding(
            names, originals, cast_call, None, args_of, [*notes, note]
        ).differentiable()

    def is_clash(error: Exception) -> bool:
        # Any RuntimeError of a closure over float32 tensors or modules: the message differs
        # per op (conv: "Input type (double) and bias type (float)"), what it captures does not.
        return (
            native_call is not None
            and isinstance(error, RuntimeError)
            and captures_low_precision(fn)
        )

    def with_clones(clash: Exception) -> Differentiable:
        """The closure with float64 clones of the modules it captures (`Float64Clones`); if it
        still clashes (a captured float32 tensor in a matmul), in the user's dtype."""
        modules = [m for m in captured_modules(fn) if not is_keras_layer(m, "torch")]
        try:
            clones = Float64Clones(modules) if modules else None
        except (TypeError, RuntimeError, copy.Error):  # not copyable: the user's dtype it is
            clones = None
        if clones is None:
            return in_own_dtype(clash)

        def cloned_call(pieces: Sequence[torch.Tensor]) -> Any:
            with clones.active():
                return call(pieces)

        note = (
            f"fn uses {', '.join(clones.names)} from outside its arguments, in "
            f"{', '.join(sorted({dtype_name(t) for m in modules for t in m.parameters()}))}: "
            f"checked with float64 clones of {', '.join(clones.names)} while fn runs (yours are "
            "left as they are); pass a module as fn to check its parameters too"
        )
        binding = TorchBinding(names, originals, cloned_call, native_call, args_of, [*notes, note])
        return retry_in_own_dtype(binding.differentiable, in_own_dtype, is_clash)

    return retry_in_own_dtype(
        TorchBinding(names, originals, call, native_call, args_of, notes).differentiable,
        with_clones,
        is_clash,
    )
