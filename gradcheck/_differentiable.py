"""The contract between adapters and the checker: user code as f: R^n -> R^m on float64 vectors.

Every adapter (one per framework, in `adapters/`) binds a user's function to a `Differentiable`:
the function restricted to the inputs being checked, flattened into one float64 vector and
evaluated on promoted copies. The finite-difference engine and the checker see nothing else,
which is what keeps them framework-free; they import this module, never `adapters/`.

A new adapter implements `value` and the derivatives its framework has (each missing one raises
`Unsupported` with the reason), overrides the batched methods where the framework vectorises, and
implements the conversion hooks if it accepts hand-written derivatives.
"""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

__all__ = ["AtPoint", "Differentiable", "Leaf", "Unsupported", "leaves_of", "locate"]


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

    @property
    def given_shape(self) -> tuple[int, ...]:
        """The shape of the whole array this leaf is taken from, as the user's code and a
        hand-written derivative see it (larger where entries are held constant)."""
        return self.shape

    def kept(self, block: np.ndarray) -> np.ndarray:
        """This leaf's entries from the whole array's entries, flat along the last axis."""
        return block

    def locate(self, flat_index: int) -> str:
        """The name of one entry: "input[0][2, 1]" (or just "input[0]" for a scalar)."""
        if not self.shape:
            return self.name
        return f"{self.name}[{', '.join(map(str, unravel(flat_index - self.offset, self.shape)))}]"


def leaves_of(named: Sequence[tuple[str, np.ndarray | tuple[int, ...], str]]) -> tuple[Leaf, ...]:
    """Consecutive leaves from (name, array-or-shape, dtype) triples."""
    out, offset = [], 0
    for name, arr, dtype in named:
        shape = tuple(arr) if isinstance(arr, tuple) else tuple(np.shape(arr))
        leaf = Leaf(name, shape, dtype, offset)
        out.append(leaf)
        offset += leaf.size
    return tuple(out)


def unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The C-order index of entry `flat` of an array of `shape` (np.unravel_index for one
    entry, without its cost: every evidence line names two entries)."""
    index = []
    for size in reversed(shape):
        flat, i = divmod(flat, size)
        index.append(i)
    return tuple(reversed(index))


def locate(leaves: Sequence[Leaf], flat_index: int) -> str:
    """The name of entry `flat_index` of the flat vector made of `leaves`."""
    for leaf in leaves:
        if leaf.offset <= flat_index < leaf.offset + leaf.size:
            return leaf.locate(flat_index)
    raise IndexError(flat_index)


@dataclass(frozen=True, slots=True)
class AtPoint:
    """f(x0) as the adapter evaluated it on its own account, for the preflight's repeats.

    Attributes:
        single: (m,) one evaluation, made while the binding learned the function's structure.
        plain: (m,) another, by the path every later point takes (the one that cross-checked
            the first batched rows, which hold x0), or None while there is none.
    """

    single: np.ndarray
    plain: np.ndarray | None = None


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
        at_point: evaluations at x0 the binding already made, for the preflight (None if
            it made none): a small check's cost is the number of calls into the framework.
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
        positions: tuple[int, ...] | None = None,
    ) -> None:
        self.x0 = x0
        self.inputs = inputs
        self.outputs = outputs
        self.eps = eps
        self.notes = notes
        self._checked_positions = positions
        self.at_point: AtPoint | None = None

    @property
    def n(self) -> int:
        return int(self.x0.size)

    @property
    def m(self) -> int:
        return sum(leaf.size for leaf in self.outputs)

    @property
    def analytic_eps(self) -> float:
        """Unit round-off of the analytic derivatives: `eps`, unless they come back coarser
        (a hand-written gradient returned in float32)."""
        return self.eps

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

    def undefined_grad(self) -> str | None:
        """Run the backward with every output's gradient undefined (None), as
        torch.autograd.gradcheck's check_undefined_grad does.

        Returns:
            None when the backward handles it (zero or undefined input gradients), else what
            went wrong in one sentence (it raised, or returned nonzero gradients).

        Raises:
            Unsupported: the framework has no notion of an undefined output gradient.
        """
        raise Unsupported(f"the {self.framework} adapter has no undefined output gradients")

    def vmapped_vjps(self, x: np.ndarray, us: np.ndarray) -> np.ndarray:
        """Jᵀu for each row of us through the framework's own batching of the backward
        (torch: is_grads_batched / vmap), for comparison with one backward per row.

        Raises:
            Unsupported: the framework cannot batch its backward here.
        """
        raise Unsupported(f"the {self.framework} adapter cannot batch its backward")

    def native_vjp(self, u: np.ndarray) -> np.ndarray | None:
        """J(x0)ᵀu computed in the user's own dtypes, for the dtype audit.

        None when the user's inputs are already float64 (nothing to audit) or the adapter
        cannot say.
        """
        return None

    # Conversion hooks for user-written derivatives (`grad=`, `vjp=`, … in `_user_derivatives`):
    # the user's callables take and return the framework's own arrays, so an adapter that
    # accepts them converts between its arrays and the flat float64 vector here.

    @property
    def positions(self) -> tuple[int, ...]:
        """The positional indices of fn's inputs that `inputs` came from, in order.

        An adapter passes them to `__init__` (`positions=`) when it checks some of fn's
        positional inputs only; the default is one input per leaf: 0, 1, 2, ...
        """
        if self._checked_positions is not None:
            return self._checked_positions
        return tuple(range(len(self.inputs)))

    def native_inputs(self, x: np.ndarray) -> tuple[Any, ...]:
        """fn's positional arguments at the flat point x, as the framework's float64 arrays."""
        raise Unsupported(f"the {self.framework} adapter does not accept user-supplied derivatives")

    def native_outputs(self, flat: np.ndarray) -> Any:
        """A flat cotangent (length m) shaped like fn's output, as the framework's arrays."""
        raise Unsupported(f"the {self.framework} adapter does not accept user-supplied derivatives")

    def native_tangents(self, flat: np.ndarray) -> tuple[Any, ...]:
        """A flat tangent (length n) as one framework array per checked input."""
        raise Unsupported(f"the {self.framework} adapter does not accept user-supplied derivatives")

    def flat_inputs(self, result: Any) -> np.ndarray | None:
        """A per-input result of a user derivative (a pytree for JAX) as a flat vector.

        None (the default) means "one array per checked input": the caller matches them by
        position and checks their shapes itself.
        """
        return None

    def scope(self) -> AbstractContextManager[Any]:
        """The framework's float64 context (JAX: x64) for building arguments and calling."""
        return contextlib.nullcontext()

    def session(self) -> AbstractContextManager[Any]:
        """A context held around a whole check, for state the adapter would otherwise switch
        at every call into the code (torch: its random stream); nothing by default."""
        return contextlib.nullcontext()
