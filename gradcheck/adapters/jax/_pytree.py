"""The user's JAX pytrees as one flat float64 vector: `JaxFunction`, a `JaxFlat`.

Positional inputs may be arrays or any pytree (dicts, tuples, registered dataclasses: flax- or
equinox-style parameter trees). The floating-point leaves of the inputs `wrt` selects are the
checked entries, named by their key paths ("input[0]['w']"); integer and other leaves stay as
they are. All float leaves (checked or not, kwargs included) are promoted to float64 copies and
every call runs inside `jax.enable_x64(True)`, a scoped context: the global `jax_enable_x64`
flag, and so the user's float32 program and its jit caches, are never touched.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..._differentiable import leaves_of
from ..._errors import UsageError
from .._common import describe, part, validate_point
from ._flat import JaxFlat

FLOAT, COMPLEX, OTHER_ARRAY, STATIC = "float", "complex", "array", "static"


def kind_of(jax: Any, leaf: Any, top_level: bool) -> str:
    """What one pytree leaf is: a float array, a complex one, another array, or static."""
    if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        dtype = leaf.dtype
        if jax.numpy.issubdtype(dtype, jax.numpy.complexfloating):
            return COMPLEX
        return FLOAT if jax.numpy.issubdtype(dtype, jax.numpy.floating) else OTHER_ARRAY
    if isinstance(leaf, complex):
        return COMPLEX
    # A bare Python float argument is a variable; a float inside a tree is a hyperparameter.
    return FLOAT if top_level and isinstance(leaf, float) else STATIC


def _dtype(leaf: Any) -> np.dtype[Any]:
    """The dtype of an array or Python scalar (np.result_type(array) is deprecated in JAX)."""
    return np.dtype(leaf.dtype) if hasattr(leaf, "dtype") else np.result_type(leaf)


class JaxFunction(JaxFlat):
    """fn(*inputs, **kwargs) of JAX arrays and pytrees, as a function of the `wrt` inputs."""

    def __init__(
        self,
        jax: Any,
        fn: Callable[..., Any],
        args: Sequence[Any],
        kwargs: dict[str, Any],
        positions: tuple[int, ...],
    ) -> None:
        tu, jnp = jax.tree_util, jax.numpy
        self._jax, self._user_fn = jax, fn
        self._user_args, self._user_kwargs = tuple(args), kwargs
        flat = [tu.tree_flatten_with_path(a) for a in args]
        self._treedefs = [treedef for _, treedef in flat]
        self._paths = [[path for path, _ in pairs] for pairs, _ in flat]
        kinds = [
            [kind_of(jax, leaf, treedef.num_nodes == 1) for _, leaf in pairs]
            for pairs, treedef in flat
        ]
        # (position, leaf index) of every checked leaf, in flat-vector order
        self._checked = [(p, j) for p in positions for j, k in enumerate(kinds[p]) if k == FLOAT]
        with jax.enable_x64(True):
            self._leaves64 = [
                [self._promote(leaf, kinds[p][j]) for j, (_, leaf) in enumerate(pairs)]
                for p, (pairs, _) in enumerate(flat)
            ]
            self._kwargs64 = tu.tree_map(lambda a: self._promote(a, kind_of(jax, a, False)), kwargs)
        user_leaves = [[leaf for _, leaf in pairs] for pairs, _ in flat]
        named = []
        for p, j in self._checked:
            leaf = user_leaves[p][j]
            name = f"input[{p}]{tu.keystr(self._paths[p][j])}"
            dtype = _dtype(leaf)
            if not isinstance(leaf, jax.Array):  # NumPy float64 is float32 to JAX without x64
                dtype = jax.dtypes.canonicalize_dtype(dtype)
            validate_point(name, np.asarray(self._leaves64[p][j]))
            named.append((name, tuple(np.shape(leaf)), str(dtype)))
        inputs = leaves_of(named)
        self._slots = inputs  # where each checked leaf sits in x (self.inputs, set later)
        x0 = np.concatenate([np.asarray(self._leaves64[p][j]).ravel() for p, j in self._checked])
        notes = self._input_notes(kinds, user_leaves, positions)

        with jax.enable_x64(True):
            x0_jax = jnp.asarray(x0)
            try:  # the output structure without compiling or running anything
                result = jax.eval_shape(lambda x: fn(*self._rebuild(x), **self._kwargs64), x0_jax)
            except Exception:  # untraceable code: run it (a user error propagates from here)
                result = fn(*self._rebuild(x0_jax), **self._kwargs64)
        out_pairs, self._out_treedef = tu.tree_flatten_with_path(result)
        out_named, eps = [], float(np.finfo(np.float64).eps)
        for path, value in out_pairs:
            name = f"output{tu.keystr(path)}"
            dtype = _dtype(value)
            if jnp.issubdtype(dtype, jnp.complexfloating):
                raise UsageError(f"{name} is complex ({dtype}): only real outputs are checked")
            if not jnp.issubdtype(dtype, jnp.floating):
                raise UsageError(
                    f"{name} is {describe(value)}: a differentiable output must be floating "
                    "point; return it separately or cast it to float"
                )
            eps = max(eps, float(jnp.finfo(dtype).eps))
            out_named.append((name, tuple(np.shape(value)), str(dtype)))
        outputs = leaves_of(out_named)
        if not sum(leaf.size for leaf in outputs):
            raise UsageError("output is empty: there is nothing to differentiate")

        def flat_fn(x: Any) -> Any:
            out = fn(*self._rebuild(x), **self._kwargs64)
            parts = [jnp.ravel(jnp.asarray(v)).astype(jnp.float64) for v in tu.tree_leaves(out)]
            return jnp.concatenate(parts)

        super().__init__(flat_fn, x0, inputs, outputs, eps=eps, notes=notes, positions=positions)

    def _promote(self, leaf: Any, kind: str) -> Any:
        """A float64 JAX copy of a float leaf; a private copy of a NumPy array; else as is."""
        jnp = self._jax.numpy
        if kind == FLOAT:
            return jnp.asarray(np.asarray(leaf, dtype=np.float64))
        return np.array(leaf, copy=True) if isinstance(leaf, np.ndarray) else leaf

    def _input_notes(
        self, kinds: list[list[str]], user_leaves: list[list[Any]], positions: tuple[int, ...]
    ) -> tuple[str, ...]:
        keystr = self._jax.tree_util.keystr
        notes = []
        for p, leaves in enumerate(user_leaves):
            if p not in positions:
                if any(k in (FLOAT, OTHER_ARRAY) for k in kinds[p]):
                    notes.append(
                        f"input[{p}] is passed through (float leaves as float64 copies), "
                        "not differentiated"
                    )
                continue
            for j, leaf in enumerate(leaves):
                name = f"input[{p}]{keystr(self._paths[p][j])}"
                if kinds[p][j] == OTHER_ARRAY:
                    notes.append(f"{name} ({describe(leaf)}) is not differentiated")
                elif kinds[p][j] == STATIC and isinstance(leaf, float):
                    notes.append(f"{name} is a Python float inside a pytree: held constant")
        return tuple(notes)

    def _rebuild(self, x: Any) -> list[Any]:
        """All positional arguments, the checked float leaves taken from the flat x."""
        tu = self._jax.tree_util
        leaves = [list(ls) for ls in self._leaves64]
        for (p, j), leaf in zip(self._checked, self._slots, strict=True):
            leaves[p][j] = part(x, leaf)
        return [tu.tree_unflatten(td, ls) for td, ls in zip(self._treedefs, leaves, strict=True)]

    def native_inputs(self, x: np.ndarray) -> tuple[Any, ...]:
        """All positional arguments as JAX objects, the checked leaves float64 copies from x.

        Use them inside `self.scope()`: outside it JAX computes in float32.
        """
        with self._jax.enable_x64(True):
            return tuple(self._rebuild(self._jax.numpy.asarray(x, dtype=np.float64)))

    def native_outputs(self, flat: np.ndarray) -> Any:
        """A flat output-sized vector in the pytree structure of fn's result (a cotangent)."""
        jnp = self._jax.numpy
        with self._jax.enable_x64(True):
            parts = [jnp.asarray(part(flat, o), dtype=np.float64) for o in self.outputs]
        return self._jax.tree_util.tree_unflatten(self._out_treedef, parts)

    def native_tangents(self, flat: np.ndarray) -> tuple[Any, ...]:
        """One tangent per checked input, shaped like it; non-float leaves get float0 zeros."""
        jax = self._jax
        with jax.enable_x64(True):
            tangents = []
            for p in self.positions:
                leaves: list[Any] = [
                    np.zeros(np.shape(leaf), dtype=jax.dtypes.float0)
                    if isinstance(leaf, (jax.Array, np.ndarray, np.generic, int))
                    else 0.0
                    if isinstance(leaf, float)
                    else leaf
                    for leaf in self._leaves64[p]
                ]
                for leaf, (q, j) in zip(self.inputs, self._checked, strict=True):
                    if q == p:
                        chunk = part(flat, leaf)
                        leaves[j] = jax.numpy.asarray(chunk, dtype=np.float64)
                tangents.append(jax.tree_util.tree_unflatten(self._treedefs[p], leaves))
        return tuple(tangents)

    def flat_inputs(self, result: Any) -> np.ndarray:
        """A user's per-input derivative (grad=, vjp=, hvp=) as one flat n-vector.

        `result` holds one pytree per checked input (a tuple of them when several inputs are
        checked), shaped like those inputs: matched by key path, so a dict gradient of a dict
        of parameters works; entries for non-float leaves (None, float0) are ignored.

        Raises:
            UsageError: a missing entry or a wrong shape, named by its key path.
        """
        tu = self._jax.tree_util
        parts = tuple(result) if len(self.positions) > 1 else (result,)
        if len(parts) != len(self.positions):
            raise UsageError(
                f"the derivative returned {len(parts)} parts for "
                f"{len(self.positions)} checked inputs: return one per input"
            )
        found = {}
        for p, tree in zip(self.positions, parts, strict=True):
            for path, value in tu.tree_flatten_with_path(tree)[0]:
                found[(p, tu.keystr(path))] = value
        flat = []
        for leaf, (p, j) in zip(self.inputs, self._checked, strict=True):
            value = found.get((p, tu.keystr(self._paths[p][j])))
            if value is None:
                raise UsageError(f"the derivative has no entry for {leaf.name}")
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != leaf.shape:
                raise UsageError(
                    f"the derivative's entry for {leaf.name} has shape {arr.shape}, "
                    f"expected {leaf.shape}"
                )
            flat.append(arr.ravel())
        return np.concatenate(flat)

    def native_vjp(self, u: np.ndarray) -> np.ndarray | None:
        """J(x0)ᵀu in the user's own dtypes and x64 setting; None when those are float64."""
        if all(leaf.dtype == "float64" for leaf in self.inputs):
            return None
        jax = self._jax
        tu, jnp = jax.tree_util, jax.numpy
        user = [tu.tree_leaves(a) for a in self._user_args]
        primals = [user[p][j] for p, j in self._checked]

        def of_checked(*checked: Any) -> Any:
            leaves = [list(ls) for ls in user]
            for (p, j), value in zip(self._checked, checked, strict=True):
                leaves[p][j] = value
            args = [tu.tree_unflatten(t, ls) for t, ls in zip(self._treedefs, leaves, strict=True)]
            return self._user_fn(*args, **self._user_kwargs)

        def pulled_back(primals: list[Any], u: Any) -> Any:
            out, pullback = jax.vjp(of_checked, *primals)
            out_leaves, treedef = tu.tree_flatten(out)
            cotangent = [
                part(u, o).astype(_dtype(v)) for o, v in zip(self.outputs, out_leaves, strict=True)
            ]
            return pullback(tu.tree_unflatten(treedef, cotangent))

        with warnings.catch_warnings():  # JAX's float64 truncation warnings are the user's
            warnings.simplefilter("ignore", UserWarning)
            u_jax = jnp.asarray(u)  # float32 unless the user enabled x64: as their code runs
            try:
                grads = jax.jit(pulled_back)(primals, u_jax)
            except Exception:  # untraceable code: eagerly (a user error propagates from here)
                grads = pulled_back(primals, u_jax)
        return np.concatenate([np.asarray(g, dtype=np.float64).ravel() for g in grads])
