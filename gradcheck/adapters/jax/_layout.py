"""Where each leaf of the user's arguments comes from in the flat function f(env, x).

A checked leaf is a slice of x (two, re and im, for a complex one; its finite entries only
where others are held, see `_partial`); a float leaf that is not
checked is an entry of `env`, a jit argument; every other leaf (integer arrays, Python
scalars, strings) is a constant of the program. The `Layout` is all `_pytree.JaxFunction`
needs to rebuild the arguments, and its `key` is the static half of the program cache of
`_flat` ("Note: compiled programs are reused across checks"): two checks with equal keys and
the same function object can share compiled programs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._differentiable import Leaf
from .._partial import Ops, assemble

X, ENV, CONST = "x", "env", "const"
Source = tuple[str, Any]  # (X, slot index) | (ENV, env index) | (CONST, the value)


def join(x: Any, slot: Sequence[Leaf], *, tangent: bool = False) -> Any:
    """One checked leaf from the flat x (NumPy or JAX): its part, or re + i·im if complex;
    entries that are not finite put back around the finite ones (zero for a tangent)."""
    pieces = [x[leaf.offset : leaf.offset + leaf.size] for leaf in slot]
    return assemble(slot, pieces, _ops(), tangent=tangent)


@functools.cache
def _ops() -> Ops:
    import jax  # deferred: see the adapters/__init__.py docstring

    jnp = jax.numpy
    return Ops(
        concat=lambda a, b: jnp.concatenate([a, jnp.asarray(b, dtype=a.dtype)]),
        gather=lambda a, i: a[i],
        reshape=jnp.reshape,
        join=jax.lax.complex,
    )


@dataclass(frozen=True, slots=True)
class Layout:
    """The positional and keyword arguments of fn as sources (see the module docstring).

    Attributes:
        treedefs: the structure of each positional argument.
        sources: per positional argument, the source of each of its leaves.
        kw_treedef: the structure of the kwargs dict; kw_sources: the source of its leaves.
        slots: the flat-vector leaves of each checked leaf, in x order.
    """

    treedefs: tuple[Any, ...]
    sources: tuple[tuple[Source, ...], ...]
    kw_treedef: Any
    kw_sources: tuple[Source, ...]
    slots: tuple[tuple[Leaf, ...], ...]

    def arguments(self, tree_util: Any, env: Sequence[Any], x: Any) -> tuple[list[Any], Any]:
        """fn's positional arguments and kwargs, the checked leaves taken from x."""
        return self.fill(tree_util, env, [join(x, slot) for slot in self.slots])

    def fill(
        self, tree_util: Any, env: Sequence[Any], checked: Sequence[Any]
    ) -> tuple[list[Any], Any]:
        """fn's positional arguments and kwargs from the checked leaves themselves."""

        def leaf(source: Source) -> Any:
            kind, value = source
            if kind == X:
                return checked[value]
            return env[value] if kind == ENV else value

        args = [
            tree_util.tree_unflatten(treedef, [leaf(s) for s in sources])
            for treedef, sources in zip(self.treedefs, self.sources, strict=True)
        ]
        return args, tree_util.tree_unflatten(self.kw_treedef, [leaf(s) for s in self.kw_sources])

    def key(self) -> Hashable:
        """The layout with constants by value (arrays by dtype, shape and bytes); hashing it
        raises TypeError for a constant that cannot be hashed."""

        def frozen(source: Source) -> Hashable:
            kind, value = source
            if kind == CONST and hasattr(value, "dtype") and hasattr(value, "shape"):
                arr = np.asarray(value)
                return (kind, type(value).__name__, arr.dtype.str, arr.shape, arr.tobytes())
            return (kind, value)

        key = (
            self.treedefs,
            tuple(tuple(frozen(s) for s in sources) for sources in self.sources),
            self.kw_treedef,
            tuple(frozen(s) for s in self.kw_sources),
            self.slots,
        )
        hash(key)
        return key


def env_leaves(
    layout: Layout, leaves: Sequence[Sequence[Any]], kw_leaves: Sequence[Any]
) -> list[Any]:
    """The leaves at the ENV sources of `layout`, taken from other arguments of the same
    structure (the user's own, for the dtype audit), in env order."""
    flat = [
        leaf
        for sources, ls in zip(layout.sources, leaves, strict=True)
        for leaf in zip(sources, ls, strict=True)
    ]
    flat += list(zip(layout.kw_sources, kw_leaves, strict=True))
    return [leaf for (kind, _), leaf in flat if kind == ENV]


def native_pullback(jax: Any, layout: Layout, ref: Callable[[], Any]) -> Any:
    """(checked, env, cotangents) -> J^T u of the user's function in the dtypes it is given:
    the dtype audit's program (jitted once per function and layout, like `flat_function`)."""
    tree_util = jax.tree_util

    def pulled_back(checked: list[Any], env: list[Any], cotangents: list[Any]) -> Any:
        def of_checked(*leaves: Any) -> Any:
            args, kwargs = layout.fill(tree_util, env, leaves)
            return ref()(*args, **kwargs)

        out, pullback = jax.vjp(of_checked, *checked)
        out_leaves, treedef = tree_util.tree_flatten(out)
        cast = [c.astype(v.dtype) for c, v in zip(cotangents, out_leaves, strict=True)]
        return pullback(tree_util.tree_unflatten(treedef, cast))

    return pulled_back


def flat_function(tree_util: Any, jnp: Any, layout: Layout, ref: Callable[[], Any]) -> Any:
    """f(env, x): the user's function (`ref()`, a weak reference) of the flat float64 x, its
    outputs raveled into one float64 vector, complex ones as real then imaginary parts."""

    def flat(env: Any, x: Any) -> Any:
        args, kwargs = layout.arguments(tree_util, env, x)
        out = ref()(*args, **kwargs)
        parts = []
        for value in tree_util.tree_leaves(out):
            raveled = jnp.ravel(jnp.asarray(value))
            if jnp.iscomplexobj(raveled):
                parts += [jnp.real(raveled), jnp.imag(raveled)]
            else:
                parts.append(raveled)
        return jnp.concatenate([p.astype(jnp.float64) for p in parts])

    return flat
