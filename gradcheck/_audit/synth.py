"""Discovered objects: recognise custom-gradient rules, modules and layers, and make inputs.

Note: Synthesised inputs
    An object found in a module says nothing about where to check it, so inputs are made
    from what it does say: a Keras model's input shape, a torch module's ``in_features`` /
    ``in_channels``, the parameters of a rule's forward function (type hints: ``int``,
    ``float``, ``bool``, ``str`` and containers cannot be made up). The values are seeded
    uniform draws in [0.3, 1.3]: positive, away from 0, so ``log``, ``sqrt`` and kinks at 0
    do not turn a correct rule into a finding. Shapes are tried from `SHAPES` in order, and
    the first one the object's forward accepts is checked; if none is, the object is
    skipped with the last error. A rule is checked through its ``apply``/call with
    everything differentiable (``wrt="all"`` for modules and layers: inputs and weights).

Frameworks are looked up in `sys.modules`, never imported here: an object of a framework
the audited module did not import cannot exist.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SHAPES: tuple[tuple[int, ...], ...] = ((3,), (2, 3), (2, 4, 4), (1, 3, 6, 6), (2, 3, 4))
NOT_ARRAYS = ("int", "float", "bool", "str", "tuple", "list", "dict", "Sequence", "Callable")


@dataclass(frozen=True)
class Target:
    """A discovered object ready to check.

    Attributes:
        kind: what was recognised, for skip messages ("torch.autograd.Function" ...).
        fn: what to pass to `gradcheck.check`.
        arity: how many array inputs fn takes (None: a module or layer, one input).
        shapes: input shapes to try, best guess first.
        make: builds inputs of one shape in the framework's own type: (shape, arity) -> tuple.
        options: extra options for `check` (``wrt="all"`` ...).
        source: the object whose definition the report points at; None for an instance.
    """

    kind: str
    fn: Any
    arity: int
    shapes: tuple[tuple[int, ...], ...]
    make: Callable[[tuple[int, ...], int], tuple[Any, ...]]
    options: dict[str, Any]
    source: Any


class UnsynthesisableError(Exception):
    """A checkable kind of object whose inputs cannot be made up (the message says why)."""


def _values(shape: tuple[int, ...], k: int) -> np.ndarray:
    return np.random.default_rng(k).uniform(0.3, 1.3, shape)


def _numpy(shape: tuple[int, ...], arity: int) -> tuple[Any, ...]:
    return tuple(_values(shape, k) for k in range(arity))


def _arity(fn: Callable[..., Any], skip: int = 0) -> int:
    """How many required positional parameters fn has, refusing ones hinted as non-arrays."""
    params = list(inspect.signature(fn).parameters.values())[skip:]
    required = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.default is not p.empty:
            continue
        hint = (
            p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        )
        if p.annotation is not p.empty and any(word in str(hint) for word in NOT_ARRAYS):
            raise UnsynthesisableError(f"cannot make up argument {p.name!r} of type {hint}")
        required.append(p)
    if not required:
        raise UnsynthesisableError("takes no array argument to differentiate")
    return len(required)


def _defined_here(obj: Any, module: str) -> bool:
    return getattr(obj, "__module__", None) == module


def _torch_targets(obj: Any, module: str) -> Target | None:
    torch = sys.modules.get("torch")
    if torch is None:
        return None

    def tensors(dtype: Any) -> Callable[[tuple[int, ...], int], tuple[Any, ...]]:
        return lambda shape, n: tuple(torch.from_numpy(a).to(dtype) for a in _numpy(shape, n))

    if isinstance(obj, type) and issubclass(obj, torch.autograd.Function):
        if obj is torch.autograd.Function or not _defined_here(obj, module):
            return None
        function: Any = obj
        old_style = function.setup_context is torch.autograd.Function.setup_context
        arity = _arity(function.forward, skip=1 if old_style else 0)
        make = tensors(torch.float64)
        return Target("torch.autograd.Function", function.apply, arity, SHAPES, make, {}, obj)
    custom_ops = getattr(getattr(torch, "_library", None), "custom_ops", None)
    if custom_ops is not None and isinstance(obj, custom_ops.CustomOpDef):
        # CustomOpDef keeps the user's function and the registered backward in private fields;
        # torch.library.opcheck reads them the same way.
        if obj._backward_fn is None:
            raise UnsynthesisableError("custom op with no autograd formula (register_autograd)")
        arity = _arity(obj._init_fn)
        make = tensors(torch.float64)
        return Target("torch.library.custom_op", obj, arity, SHAPES, make, {}, obj._init_fn)
    module_type = torch.nn.Module
    source = obj if isinstance(obj, type) else None  # an instance has no line of its own
    if isinstance(obj, type) and issubclass(obj, module_type) and _defined_here(obj, module):
        obj = _construct(obj)
    if isinstance(obj, module_type):
        params = list(obj.parameters())
        dtype = params[0].dtype if params else torch.float64
        options = {"wrt": "all" if params else "inputs"}
        shapes = _module_shapes(obj)
        return Target("torch.nn.Module", obj, 1, shapes, tensors(dtype), options, source)
    return None


def _construct(cls: type) -> Any:
    try:
        return cls()
    except TypeError as error:
        raise UnsynthesisableError(
            f"{cls.__name__}() needs constructor arguments ({error})"
        ) from None
    except Exception as error:  # a constructor that fails is the user's to see, not a crash
        raise UnsynthesisableError(
            f"{cls.__name__}() raised {type(error).__name__}: {error}"
        ) from None


def _module_shapes(module: Any) -> tuple[tuple[int, ...], ...]:
    """Shapes a torch module's first layer asks for (in_features, in_channels), then `SHAPES`."""
    for layer in module.modules():
        if getattr(layer, "in_features", None):
            return ((2, int(layer.in_features)), *SHAPES)
        if getattr(layer, "in_channels", None) and getattr(layer, "weight", None) is not None:
            spatial = layer.weight.dim() - 2
            return ((1, int(layer.in_channels), *(6,) * spatial), *SHAPES)
        if getattr(layer, "num_embeddings", None):
            raise UnsynthesisableError(
                "takes integer indices (an embedding): give a @gradcheck.case"
            )
    return SHAPES


def _jax_targets(obj: Any, module: str) -> Target | None:
    jax = sys.modules.get("jax")
    if jax is None or not isinstance(obj, (jax.custom_vjp, jax.custom_jvp)):
        return None
    kind = f"jax.{type(obj).__name__}"
    rule = obj.fwd if isinstance(obj, jax.custom_vjp) else obj.jvp
    if rule is None:
        raise UnsynthesisableError(f"{kind} with no rule defined (defvjp/defjvp)")
    if obj.nondiff_argnums:
        raise UnsynthesisableError(f"{kind} with nondiff_argnums: give a @gradcheck.case")
    options = {"framework": "jax"}
    return Target(kind, obj, _arity(obj.fun), SHAPES, _numpy, options, obj.fun)


def _tensorflow_targets(obj: Any, module: str) -> Target | None:
    tf = sys.modules.get("tensorflow")
    keras = sys.modules.get("keras")
    decorator = getattr(obj, "_tf_decorator", None) if tf is not None else None
    if getattr(decorator, "decorator_name", None) == "custom_gradient":
        target = decorator.decorated_target  # type: ignore[union-attr]
        options = {"framework": "tensorflow"}
        arity = _arity(target)
        return Target("tf.custom_gradient", obj, arity, SHAPES, _numpy, options, target)
    if keras is None:
        return None
    layer = keras.layers.Layer
    source = obj if isinstance(obj, type) else None  # an instance has no line of its own
    if isinstance(obj, type) and issubclass(obj, layer) and _defined_here(obj, module):
        obj = _construct(obj)
    if isinstance(obj, layer):
        inputs = getattr(obj, "inputs", None) if isinstance(obj, keras.Model) else None
        shapes = SHAPES
        if inputs and len(inputs) == 1:
            shapes = (tuple(d or 1 for d in inputs[0].shape), *SHAPES)  # batch of one
        elif inputs:
            raise UnsynthesisableError("a Keras model with several inputs: give a @gradcheck.case")
        return Target("keras.Layer", obj, 1, shapes, _numpy, {"wrt": "all"}, source)
    return None


RECOGNISERS: tuple[Callable[[Any, str], Target | None], ...] = (
    _torch_targets,
    _jax_targets,
    _tensorflow_targets,
)


def recognise(obj: Any, module: str) -> Target | None:
    """The target for obj, None when it is not a kind the audit discovers.

    Raises:
        UnsynthesisableError: it is a kind the audit discovers, but cannot be checked as is.
    """
    if inspect.ismodule(obj):
        return None
    for recogniser in RECOGNISERS:
        target = recogniser(obj, module)
        if target is not None:
            return target
    return None


def inputs_for(target: Target) -> tuple[Any, ...]:
    """The first inputs, of `target.shapes`, that its forward accepts.

    Raises:
        UnsynthesisableError: no shape worked; the message gives the last error.
    """
    last: BaseException | None = None
    tried: list[str] = []
    for shape in dict.fromkeys(target.shapes):
        inputs = target.make(shape, target.arity)
        try:
            target.fn(*inputs)
        except Exception as error:  # the object's own complaint decides the next shape
            last = error
            tried.append(str(shape))
            continue
        return inputs
    raise UnsynthesisableError(
        f"no input shape worked (tried {', '.join(tried)}): {type(last).__name__}: {last}"
    )


def source_line(obj: Any) -> tuple[str | None, int | None]:
    """The file and first line of obj's definition, (None, None) when unknown."""
    if obj is None:
        return None, None
    try:
        return inspect.getsourcefile(obj), inspect.getsourcelines(obj)[1]
    except (TypeError, OSError):
        return None, None


def describe(inputs: Sequence[Any], fn: Any) -> str:
    """Inputs in a case name: ``x=float64(3,)``, or the values of an input of up to 4 entries."""
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []
    parts = []
    for k, x in enumerate(inputs):
        name = names[k] if k < len(names) else f"arg{k}"
        shape = tuple(getattr(x, "shape", ()))
        dtype = str(getattr(x, "dtype", type(x).__name__)).rpartition(".")[2]
        try:
            flat = np.asarray(x.tolist() if hasattr(x, "tolist") else x, dtype=float).ravel()
        except (TypeError, ValueError):
            flat = np.empty(0)
        if 0 < flat.size <= 4:
            parts.append(f"{name}=[{' '.join(f'{v:g}' for v in flat)}]")
        else:
            parts.append(f"{name}={dtype}{shape}")
    return ", ".join(parts)
