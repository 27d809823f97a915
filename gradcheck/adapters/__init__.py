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

import math
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._errors import UsageError

__all__ = [
    "ADAPTERS",
    "Adapter",
    "Differentiable",
    "Leaf",
    "Unsupported",
    "get_adapter",
]

Wrt = int | str | Sequence[int] | None


class Unsupported(NotImplementedError):  # noqa: N818 - reads as "<kind> is unsupported"
    """An adapter cannot compute this derivative here; the message says why.

    The checker records it as a skipped check with that reason: never a failure.
    """


@dataclass(frozen=True, slots=True)
class Leaf:
    """One array inside the flat vector: where it lives and how to name its entries.

    Attributes:
        name: how the report names it, e.g. "input[0]", "params['fc.weight']", "output[1]".
        shape: its shape.
        dtype: the user's dtype, e.g. "float32" (the check itself runs in float64).
        offset: index of its first entry in the flat vector.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    offset: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def locate(self, flat_index: int) -> str:
        """The name of one entry: "input[0][2, 1]" (or just "input[0]" for a scalar)."""
        if not self.shape:
            return self.name
        index = np.unravel_index(flat_index - self.offset, self.shape)
        return f"{self.name}[{', '.join(str(int(i)) for i in index)}]"


def leaves_of(named: Sequence[tuple[str, np.ndarray | tuple[int, ...], str]]) -> tuple[Leaf, ...]:
    """Consecutive leaves from (name, array-or-shape, dtype) triples."""
    out, offset = [], 0
    for name, arr, dtype in named:
        shape = tuple(arr) if isinstance(arr, tuple) else tuple(np.shape(arr))
        leaf = Leaf(name, shape, dtype, offset)
        out.append(leaf)
        offset += leaf.size
    return tuple(out)


def locate(leaves: Sequence[Leaf], flat_index: int) -> str:
    """The name of entry `flat_index` of the flat vector made of `leaves`."""
    for leaf in leaves:
        if leaf.offset <= flat_index < leaf.offset + leaf.size:
            return leaf.locate(flat_index)
    raise IndexError(flat_index)


class Differentiable(ABC):
    """User code as f: R^n -> R^m on float64 NumPy vectors, for the engine and the checker.

    It works on promoted copies and never on the user's objects. Subclasses implement `value`
    and the derivatives their framework has; a derivative it cannot compute raises
    `Unsupported` with the reason. Batched methods default to loops; adapters override them
    where the framework can vectorise (vmap).

    Attributes:
        framework: "numpy", "torch", "jax", "tensorflow".
        x0: (n,) the point being checked: the `wrt` inputs, flattened, as float64.
        inputs: the leaves of x0, in order.
        outputs: the leaves of f's flat output.
        eps: unit round-off of f's values as the user's code computes them on float64 copies
            (2.2e-16 unless the code itself drops to lower precision).
        notes: facts the report should state, e.g. "input[2] is an integer array: not
            differentiated".
    """

    framework: ClassVar[str] = "?"

    def __init__(
        self,
        x0: np.ndarray,
        inputs: tuple[Leaf, ...],
        outputs: tuple[Leaf, ...],
        *,
        eps: float = float(np.finfo(np.float64).eps),
        notes: tuple[str, ...] = (),
    ) -> None:
        self.x0 = x0
        self.inputs = inputs
        self.outputs = outputs
        self.eps = eps
        self.notes = notes

    @property
    def n(self) -> int:
        return int(self.x0.size)

    @property
    def m(self) -> int:
        return sum(leaf.size for leaf in self.outputs)

    @abstractmethod
    def value(self, x: np.ndarray) -> np.ndarray:
        """f(x) as a flat float64 vector of length m."""

    def values(self, xs: np.ndarray) -> np.ndarray:
        """f at each row of xs (k, n), as (k, m). Override to vectorise."""
        return np.stack([self.value(x) for x in xs]) if len(xs) else np.empty((0, self.m))

    def vjp(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Reverse mode: J(x)ᵀu, a vector of length n."""
        raise Unsupported(f"the {self.framework} adapter has no reverse mode here")

    def jvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Forward mode: J(x)v, a vector of length m."""
        raise Unsupported(f"the {self.framework} adapter has no forward mode here")

    def vjps(self, x: np.ndarray, us: np.ndarray) -> np.ndarray:
        """J(x)ᵀu for each row of us (k, m), as (k, n). Override to vectorise."""
        return np.stack([self.vjp(x, u) for u in us]) if len(us) else np.empty((0, self.n))

    def jvps(self, x: np.ndarray, vs: np.ndarray) -> np.ndarray:
        """J(x)v for each row of vs (k, n), as (k, m). Override to vectorise."""
        return np.stack([self.jvp(x, v) for v in vs]) if len(vs) else np.empty((0, self.m))

    def gradient_map(self, u: np.ndarray) -> Differentiable:
        """x ↦ J(x)ᵀu as a Differentiable of its own, for checking second and higher orders.

        Its Jacobian is Σ_j u_j ∇²f_j(x), so its vjp/jvp are Hessian-vector products. Raise
        `Unsupported` where the framework cannot differentiate its own derivatives.
        """
        raise Unsupported(f"the {self.framework} adapter cannot differentiate its derivatives")

    def native_vjp(self, u: np.ndarray) -> np.ndarray | None:
        """J(x0)ᵀu computed in the user's own dtypes, for the dtype audit.

        None when the user's inputs are already float64 (nothing to audit) or the adapter
        cannot say.
        """
        return None


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
