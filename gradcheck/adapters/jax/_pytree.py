"""The user's JAX pytrees as one flat float64 vector: `JaxFunction`, a `JaxFlat`.

Positional inputs may be arrays or any pytree (dicts, tuples, registered dataclasses: flax- or
equinox-style parameter trees). The floating-point leaves of the inputs `wrt` selects are the
checked entries, named by their key paths ("input[0]['w']"); integer and other leaves stay as
they are. All float leaves (checked or not, kwargs included) are promoted to float64 copies and
every call runs inside `jax.enable_x64(True)`, a scoped context: the global `jax_enable_x64`
flag, and so the user's float32 program and its jit caches, are never touched. A checked leaf
with entries that are not finite (a -inf attention mask) contributes its finite entries only;
the others are held at their values, with a note (`_partial`).

Note: complex numbers in JAX
    A complex leaf (input or output) is two real leaves of its shape, "<name>.real" and
    "<name>.imag", in the flat vector; complex inputs are promoted to complex128. The flat
    function builds z = re + i·im, runs the user's code and returns the real and imaginary
    parts of complex outputs, so f stays a map R^n -> R^m and its JVP, VJP and Hessians come
    from JAX's own transposition of `complex`, `real` and `imag`. That composition checks
    JAX's convention for grad/vjp of complex functions: vjp(f)(ct) = ct·f'(z) for holomorphic
    f, no conjugation (`jax.grad(f, holomorphic=True)` is its ct = 1 case), so the real-view
    VJP of a real cotangent (gr, gi) equals (Re r, -Im r) of r = vjp(f)(gr - i·gi). A custom
    rule written in another convention (torch's conjugate Wirtinger one: ct·conj(f'(z))) fails,
    with exactly the entries that couple real and imaginary parts flipped. The same formula
    converts a user's complex derivatives (`native_outputs`, `flat_inputs`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from ..._differentiable import leaves_of
from ..._errors import UsageError
from .._common import describe, part
from .._partial import Placement
from ._flat import JaxFlat, cached_programs, raise_if_one_mode_only
from ._layout import (
    CONST,
    ENV,
    Layout,
    Source,
    X,
    env_leaves,
    flat_function,
    join,
    native_pullback,
)

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


def _real_dtype(dtype: np.dtype[Any]) -> str:
    """The dtype of the real and imaginary parts of a complex dtype (complex64 -> float32)."""
    return str(np.finfo(dtype).dtype)


def _parts(name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> list[tuple[str, Any, str]]:
    """The (name, shape, dtype) of one flat-vector leaf, or of the two parts of a complex one."""
    if np.issubdtype(dtype, np.complexfloating):
        part_dtype = _real_dtype(dtype)
        return [(f"{name}.real", shape, part_dtype), (f"{name}.imag", shape, part_dtype)]
    return [(name, shape, str(dtype))]


COMPLEX_NOTE = (
    "complex values are checked as their real and imaginary parts (.real/.imag), against "
    "JAX's convention for grad/vjp of complex functions: vjp(f)(ct) = ct·f'(z) for "
    "holomorphic f, no conjugation"
)


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
        self._checked = [
            (p, j) for p in positions for j, k in enumerate(kinds[p]) if k in (FLOAT, COMPLEX)
        ]
        with jax.enable_x64(True):
            self._leaves64 = [
                [self._promote(leaf, kinds[p][j]) for j, (_, leaf) in enumerate(pairs)]
                for p, (pairs, _) in enumerate(flat)
            ]
            self._kwargs64 = tu.tree_map(lambda a: self._promote(a, kind_of(jax, a, False)), kwargs)
        user_leaves = [[leaf for _, leaf in pairs] for pairs, _ in flat]
        named: list[tuple[str, np.ndarray, str]] = []
        for p, j in self._checked:
            leaf = user_leaves[p][j]
            dtype = _dtype(leaf)
            if not isinstance(leaf, jax.Array):  # NumPy float64 is float32 to JAX without x64
                dtype = jax.dtypes.canonicalize_dtype(dtype)
            named.append(
                (
                    f"input[{p}]{tu.keystr(self._paths[p][j])}",
                    np.asarray(self._leaves64[p][j]),
                    _real_dtype(dtype) if np.issubdtype(dtype, np.complexfloating) else str(dtype),
                )
            )
        # where each checked leaf sits in x: one leaf, or re and im; finite entries only
        self._placement = Placement(named)
        inputs, x0 = self._placement.leaves, self._placement.x0
        self._slots = tuple(self._placement.groups)
        notes = (*self._input_notes(kinds, user_leaves, positions), *self._placement.notes)

        self._layout, self._env = self._lay_out(kinds)

        def call(x: Any) -> Any:
            args, kwargs = self._layout.arguments(tu, self._env, x)
            return fn(*args, **kwargs)

        with jax.enable_x64(True):
            x0_jax = jnp.asarray(x0)
            try:  # the output structure without compiling or running anything
                result = jax.eval_shape(call, x0_jax)
            except Exception:  # untraceable code: run it (a user error propagates from here)
                result = call(x0_jax)
        out_pairs, self._out_treedef = tu.tree_flatten_with_path(result)
        out_named: list[tuple[str, Any, str]] = []
        eps = float(np.finfo(np.float64).eps)
        self._out_complex = []
        for path, value in out_pairs:
            name = f"output{tu.keystr(path)}"
            dtype = _dtype(value)
            if not jnp.issubdtype(dtype, jnp.inexact):
                raise UsageError(
                    f"{name} is {describe(value)}: a differentiable output must be floating "
                    "point; return it separately or cast it to float"
                )
            eps = max(eps, float(jnp.finfo(dtype).eps))
            self._out_complex.append(bool(jnp.issubdtype(dtype, jnp.complexfloating)))
            out_named += _parts(name, tuple(np.shape(value)), dtype)
        outputs = leaves_of(out_named)
        if any(self._out_complex) or any(len(slot) == 2 for slot in self._slots):
            notes = (*notes, COMPLEX_NOTE)

        layout = self._layout
        try:
            key: Hashable | None = layout.key()
        except TypeError:  # a constant leaf that cannot be hashed: programs are not shared
            key = None
        programs = cached_programs(fn, key, lambda ref: flat_function(tu, jnp, layout, ref))
        super().__init__(
            programs, x0, inputs, outputs, eps=eps, env=self._env, notes=notes, positions=positions
        )

    def _lay_out(self, kinds: list[list[str]]) -> tuple[Layout, tuple[Any, ...]]:
        """Where each argument leaf comes from (see `_layout`), and env: the float leaves
        that are not checked, as float64 copies."""
        tu = self._jax.tree_util
        slot_of = {pj: i for i, pj in enumerate(self._checked)}
        env: list[Any] = []

        def source(value: Any, kind: str, where: tuple[int, int] | None) -> Source:
            if where in slot_of:
                return (X, slot_of[where])
            if kind in (FLOAT, COMPLEX):
                env.append(value)
                return (ENV, len(env) - 1)
            return (CONST, value)

        sources = tuple(
            tuple(source(leaf, kinds[p][j], (p, j)) for j, leaf in enumerate(leaves))
            for p, leaves in enumerate(self._leaves64)
        )
        kw_leaves, kw_treedef = tu.tree_flatten(self._kwargs64)
        kw_sources = tuple(
            source(leaf, kind_of(self._jax, leaf, False), None) for leaf in kw_leaves
        )
        layout = Layout(tuple(self._treedefs), sources, kw_treedef, kw_sources, self._slots)
        return layout, tuple(env)

    def _promote(self, leaf: Any, kind: str) -> Any:
        """A float64 JAX copy of a float leaf; a private copy of a NumPy array; else as is."""
        jnp = self._jax.numpy
        if kind == FLOAT:
            return jnp.asarray(np.asarray(leaf, dtype=np.float64))
        if kind == COMPLEX:
            return jnp.asarray(np.asarray(leaf, dtype=np.complex128))
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

    def native_inputs(self, x: np.ndarray) -> tuple[Any, ...]:
        """All positional arguments as JAX objects, the checked leaves float64 copies from x.

        Use them inside `self.scope()`: outside it JAX computes in float32.
        """
        with self._jax.enable_x64(True):
            x_jax = self._jax.numpy.asarray(x, dtype=np.float64)
            return tuple(self._layout.arguments(self._jax.tree_util, self._env, x_jax)[0])

    def native_outputs(self, flat: np.ndarray) -> Any:
        """A flat output-sized vector in the pytree structure of fn's result (a cotangent).

        A complex output's cotangent is gr - i·gi (see "Note: complex numbers in JAX").
        """
        with self._jax.enable_x64(True):
            parts = self._cotangents(flat, [None] * len(self._out_complex))
        return self._jax.tree_util.tree_unflatten(self._out_treedef, parts)

    def _cotangents(self, flat: Any, dtypes: Sequence[Any]) -> list[Any]:
        """One cotangent per output leaf of fn, in `dtypes` (None: float64/complex128)."""
        jnp = self._jax.numpy
        leaves, out, i = self.outputs, [], 0
        for is_complex, dtype in zip(self._out_complex, dtypes, strict=True):
            if is_complex:
                value = jnp.asarray(part(flat, leaves[i]) - 1j * part(flat, leaves[i + 1]))
                out.append(value.astype(dtype or jnp.complex128))
                i += 2
            else:
                out.append(jnp.asarray(part(flat, leaves[i])).astype(dtype or jnp.float64))
                i += 1
        return out

    def native_tangents(self, flat: np.ndarray) -> tuple[Any, ...]:
        """One tangent per checked input, shaped like it; non-float leaves get float0 zeros.

        A complex leaf's tangent is dre + i·dim; held entries (not finite) get zero.
        """
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
                for slot, (q, j) in zip(self._slots, self._checked, strict=True):
                    if q == p:
                        leaves[j] = jax.numpy.asarray(join(flat, slot, tangent=True))
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
        arrays = []
        for slot, shape, (p, j) in zip(
            self._slots, self._placement.shapes, self._checked, strict=True
        ):
            name = slot[0].name.removesuffix(".real") if len(slot) == 2 else slot[0].name
            value = found.get((p, tu.keystr(self._paths[p][j])))
            if value is None:
                raise UsageError(f"the derivative has no entry for {name}")
            arr = np.asarray(value)
            if arr.shape != shape:
                raise UsageError(
                    f"the derivative's entry for {name} has shape {arr.shape}, expected {shape}"
                )
            arrays.append(arr)
        return self._placement.flat(arrays, conjugate=True)

    def native_vjp(self, u: np.ndarray) -> np.ndarray | None:
        """J(x0)ᵀu in the user's own dtypes and x64 setting; None when those are float64."""
        if all(leaf.dtype == "float64" for leaf in self.inputs):
            return None
        jax = self._jax
        tu = jax.tree_util
        user = [tu.tree_leaves(a) for a in self._user_args]
        checked = [user[p][j] for p, j in self._checked]
        env = env_leaves(self._layout, user, tu.tree_leaves(self._user_kwargs))
        programs, ref = self._programs, self._programs.ref
        assert ref is not None  # JaxFunction's programs come from `cached_programs`
        with warnings.catch_warnings():  # JAX's float64 truncation warnings are the user's
            warnings.simplefilter("ignore", UserWarning)
            # float32 unless the user enabled x64: as their code runs
            cotangents = self._cotangents(u, [None] * len(self._out_complex))
            if "native" not in programs.extra:
                programs.extra["native"] = jax.jit(native_pullback(jax, self._layout, ref))
            try:
                grads = programs.extra["native"](checked, env, cotangents)
            except Exception:  # untraceable code: eagerly (a user error propagates from here)
                try:
                    grads = native_pullback(jax, self._layout, ref)(checked, env, cotangents)
                except Exception as exc:  # no reverse mode at all: no audit, no note
                    raise_if_one_mode_only(exc)
                    raise
        return self._placement.flat([np.asarray(g) for g in grads], conjugate=True)
