"""Adapters: user code of any framework seen as one float64 function f: R^n -> R^m.

Each framework has one small module here, imported only when the user's objects show that the
framework is in use: `get_adapter` considers an adapter only when its framework is already in
`sys.modules` (a torch tensor cannot exist unless torch was imported), so `import gradcheck`
never loads a framework.

An adapter's `bind` returns a `Differentiable`: the function, restricted to the inputs being
checked (`wrt`), flattened into one float64 vector, evaluated on promoted copies. The finite
difference engine and the checker see nothing else, which is what keeps them framework-free.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from .._differentiable import Differentiable, Leaf, Unsupported, leaves_of, locate
from .._errors import UsageError

__all__ = [
    "ADAPTERS",
    "Adapter",
    "Differentiable",
    "Leaf",
    "Unsupported",
    "get_adapter",
    "leaves_of",
    "locate",
]

Wrt = int | str | Sequence[int] | None


class Adapter(ABC):
    """Knows one framework: recognises its objects and binds user code to a Differentiable."""

    framework: ClassVar[str]
    module: ClassVar[str]  # the top-level module that must be imported for its objects to exist

    @abstractmethod
    def handles(self, obj: object) -> bool:
        """Whether obj is an array, tensor, module or layer of this framework."""

    @abstractmethod
    def bind(
        self, fn: Callable[..., Any], inputs: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
    ) -> Differentiable:
        """fn(*inputs, **kwargs) as a Differentiable of the inputs that `wrt` selects.

        Raises:
            UsageError: inputs of a kind this framework cannot differentiate, or a bad `wrt`.
        """


def _adapter_classes() -> tuple[type[Adapter], ...]:
    from ._jax import JaxAdapter
    from ._numpy import NumpyAdapter
    from ._tensorflow import TensorflowAdapter
    from ._torch import TorchAdapter

    return (NumpyAdapter, JaxAdapter, TorchAdapter, TensorflowAdapter)


def __getattr__(name: str) -> Any:
    if name == "ADAPTERS":  # the explicit, ordered tuple; built on first use
        return _adapter_classes()
    raise AttributeError(name)


_instances: dict[type[Adapter], Adapter] = {}


def _instance(cls: type[Adapter]) -> Adapter:
    if cls not in _instances:
        _instances[cls] = cls()
    return _instances[cls]


def get_adapter(objects: Sequence[object], framework: str | None = None) -> Adapter:
    """The adapter for these objects (inputs first, then the function or model).

    Args:
        objects: the user's inputs, then fn; the first object a framework recognises decides.
        framework: force one ("numpy", "torch", "jax", "tensorflow"), e.g. NumPy inputs
            for a function of another framework.

    Raises:
        UsageError: an unknown framework name, or objects no adapter recognises.
    """
    classes = _adapter_classes()
    names = {cls.framework: cls for cls in classes}
    if framework is not None:
        if framework == "keras":
            framework = "tensorflow"
        if framework not in names:
            raise UsageError(f"unknown framework {framework!r}; choose from {sorted(names)}")
        return _instance(names[framework])
    present = [cls for cls in classes if cls.module in sys.modules]
    # Non-NumPy frameworks first: a torch module called on NumPy inputs is torch code.
    for cls in sorted(present, key=lambda c: c.framework == "numpy"):
        adapter = _instance(cls)
        if any(adapter.handles(obj) for obj in objects):
            return adapter
    kinds = ", ".join(sorted({type(obj).__name__ for obj in objects})) or "nothing"
    raise UsageError(
        f"cannot tell which framework these inputs belong to ({kinds}); supported: "
        "NumPy arrays, torch tensors/modules, JAX arrays (and pytrees of them), "
        "TensorFlow tensors/variables and Keras layers. Pass framework=... to choose one."
    )


def select_positions(
    wrt: Wrt, differentiable: Sequence[bool], kinds: Sequence[str]
) -> tuple[int, ...]:
    """The positional inputs to check: `wrt` as given, or every floating-point input.

    Args:
        wrt: None, an index, or a sequence of indices (negative ones count from the end).
        differentiable: per positional input, whether it is a floating-point array.
        kinds: per positional input, a short description for messages ("int64 array").

    Raises:
        UsageError: an index out of range, a non-float input asked for, or nothing to check.
    """
    count = len(differentiable)
    if wrt is None:
        chosen = tuple(i for i in range(count) if differentiable[i])
        if not chosen:
            listing = ", ".join(f"input[{i}] is {k}" for i, k in enumerate(kinds)) or "no inputs"
            raise UsageError(
                f"no floating-point input to differentiate ({listing}); "
                "pass float arrays, e.g. x.astype(float)"
            )
        return chosen
    if isinstance(wrt, str):
        raise UsageError(
            f"wrt={wrt!r} applies to modules and layers; for functions pass input indices"
        )
    indices = (wrt,) if isinstance(wrt, (int, np.integer)) else tuple(wrt)
    if not indices:
        raise UsageError("wrt is empty: name at least one input")
    chosen_list: list[int] = []
    for index in indices:
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise UsageError(f"wrt entries must be input indices, got {index!r}")
        if not -count <= index < count:
            raise UsageError(f"wrt={index} is out of range: there are {count} positional inputs")
        position = int(index) % count
        if not differentiable[position]:
            raise UsageError(
                f"wrt asks for input[{position}], which is {kinds[position]}: only "
                "floating-point inputs can be differentiated"
            )
        if position not in chosen_list:
            chosen_list.append(position)
    return tuple(chosen_list)
