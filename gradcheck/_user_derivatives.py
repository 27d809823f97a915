"""Derivatives the user wrote by hand (`grad=`, `jacobian=`, `vjp=`, `jvp=`, `hvp=`).

They replace the framework's autodiff as the analytic side of the check, for any framework:
the callables receive the same positional arguments as fn (as the framework's arrays, on
float64 copies) and may return that framework's arrays. Shapes are checked against the inputs
and outputs they belong to, so a wrong shape is a clear UsageError rather than a broadcast.

Note: complex values in hand-written derivatives
    A complex array is checked as two real leaves, "<name>.real" then "<name>.imag". Forward
    mode has one meaning in every convention: jvp= maps a tangent dz = dre + i·dim to the
    output's tangent, a complex array for a complex output (f'(z)·dz for a holomorphic f).
    So has the derivative f'(z) of a holomorphic function: jacobian= may return it (complex,
    of shape (*out_shape, *in_shape), one output), and so may grad= when fn's value is one
    complex scalar (jax.grad(holomorphic=True)'s meaning); its real Jacobian has the blocks
    [[Re f', -Im f'], [Im f', Re f']] (a complex output of a real input: [Re f'; Im f']).
    Reverse mode is where conventions differ (PyTorch's gradient is ∂L/∂re + i·∂L/∂im, JAX's
    its conjugate): the adapter converts per-input results (`flat_inputs`) and cotangents
    (`native_outputs`) in its framework's convention.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from ._differentiable import Differentiable, Leaf, Unsupported
from ._errors import UsageError

UserFn = Callable[..., Any]
Group = tuple[Leaf, ...]  # the leaves of one user array: one, or (.real, .imag)


def _numpy(obj: Any) -> np.ndarray:
    """Any framework's array as NumPy (complex kept), without importing the framework."""
    if hasattr(obj, "detach"):  # torch
        obj = obj.detach().cpu()
        obj = obj.resolve_conj().numpy() if obj.is_complex() else obj.numpy()
    elif hasattr(obj, "numpy") and not isinstance(obj, np.ndarray):  # tensorflow eager
        obj = obj.numpy()
    arr = np.asarray(obj)
    if arr.dtype == object:
        raise UsageError("a user-supplied derivative returned object values; expected floats")
    return arr


def as_array(obj: Any) -> np.ndarray:
    """Any framework's array as float64 NumPy, without importing the framework."""
    arr = _numpy(obj)
    if np.iscomplexobj(arr):
        raise UsageError(
            f"a user-supplied derivative returned {arr.dtype} values; expected real floats"
        )
    return arr


def _arrays(leaves: Sequence[Leaf]) -> list[Group]:
    """Leaves grouped per user array: "<name>.real" followed by "<name>.imag" is one complex
    array, any other leaf one real array."""
    groups: list[Group] = []
    i = 0
    while i < len(leaves):
        leaf = leaves[i]
        pair = leaves[i + 1] if i + 1 < len(leaves) else None
        if leaf.name.endswith(".real") and pair and pair.name == leaf.name[:-5] + ".imag":
            groups.append((leaf, pair))
        else:
            groups.append((leaf,))
        i += len(groups[-1])
    return groups


def _match(result: Any, count: int, positions: tuple[int, ...], what: str) -> list[Any]:
    """One part per checked array from a single array or a tuple (per checked input or per
    positional input)."""
    if isinstance(result, (tuple, list)):
        parts = list(result)
        if len(parts) != count:
            if len(parts) > max(positions, default=0):
                return [parts[p] for p in positions]
            raise UsageError(f"{what} returned {len(parts)} arrays for {count} checked inputs")
        return parts
    if count == 1:
        return [result]
    raise UsageError(
        f"{what} returned one array but {count} inputs are checked: "
        "return a tuple with one array per input"
    )


def _shaped(
    part: Any, group: Group, what: str, trailing: tuple[int, ...] = (), complex_ok: bool = False
) -> np.ndarray:
    """A part for one array, shape-checked: trailing + its shape, or that many entries; real
    unless `complex_ok`."""
    arr = _numpy(part) if complex_ok else as_array(part)
    name = group[0].name.removesuffix(".real") if len(group) == 2 else group[0].name
    expected = trailing + group[0].given_shape
    if arr.shape != expected and not (
        arr.size == int(np.prod(expected)) and arr.ndim <= 1 + len(trailing)
    ):
        raise UsageError(f"{what} returned shape {arr.shape} for {name}, expected {expected}")
    # the entries gradcheck differentiates: held ones (not finite at x) are left out
    return group[0].kept(arr.reshape(*trailing, int(np.prod(group[0].given_shape))))


def _flat_per_leaf(
    result: Any,
    leaves: tuple[Leaf, ...],
    positions: tuple[int, ...],
    what: str,
    trailing: tuple[int, ...] = (),
) -> list[np.ndarray]:
    """One float64 array per leaf from a single array or a tuple (per checked input or per
    input); a complex array's part gives its real and imaginary leaves."""
    groups = _arrays(leaves)
    out = []
    for group, part in zip(groups, _match(result, len(groups), positions, what), strict=True):
        arr = _shaped(part, group, what, trailing, complex_ok=len(group) == 2)
        views = [arr.real, arr.imag] if len(group) == 2 else [arr]
        out += [np.asarray(v, dtype=np.float64) for v in views]
    return out


def _holomorphic(
    result: Any, outputs: Sequence[Leaf], inputs: Sequence[Leaf], positions: tuple[int, ...]
) -> np.ndarray:
    """The real (m, n) Jacobian from complex derivatives f'(z), one array per checked input
    (see "Note: complex values in hand-written derivatives").

    Raises:
        UsageError: several outputs, or a complex input of a real output (no f'(z) exists).
    """
    outs = _arrays(outputs)
    if len(outs) != 1:
        raise UsageError(
            "a complex Jacobian (f'(z)) needs a single output array; pass vjp= or jvp= instead"
        )
    (out,) = outs
    ins = _arrays(inputs)
    columns = []
    for group, part in zip(ins, _match(result, len(ins), positions, "jacobian"), strict=True):
        if len(group) == 2 and len(out) == 1:
            name = group[0].name.removesuffix(".real")
            raise UsageError(
                f"jacobian= of the real {out[0].name} w.r.t. the complex {name}: a real "
                "function of a complex variable has no complex derivative f'(z) (it is not "
                "holomorphic); pass grad= or vjp= instead"
            )
        block = _shaped(part, group, "jacobian", out[0].shape, complex_ok=len(out) == 2)
        block = block.reshape(out[0].size, -1)
        re, im = np.real(block).astype(np.float64), np.imag(block).astype(np.float64)
        if len(out) == 1:
            columns.append(re)
        elif len(group) == 1:
            columns.append(np.concatenate([re, im]))
        else:
            columns.append(np.block([[re, -im], [im, re]]))
    return np.concatenate(columns, axis=1)


def _complex_scalar(outputs: Sequence[Leaf]) -> bool:
    """fn's value is one complex number (grad= is then f'(z), as with holomorphic=True)."""
    groups = _arrays(outputs)
    return len(groups) == 1 and len(groups[0]) == 2 and groups[0][0].shape == ()


class UserDerivatives(Differentiable):
    """`base` with the user's own derivatives as its analytic side."""

    def __init__(
        self,
        base: Differentiable,
        *,
        grad: UserFn | None = None,
        jacobian: UserFn | None = None,
        vjp: UserFn | None = None,
        jvp: UserFn | None = None,
        hvp: UserFn | None = None,
    ) -> None:
        try:
            base.native_inputs(base.x0)
        except Unsupported as refused:
            raise UsageError(str(refused)) from None
        holomorphic = grad is not None and hvp is None and _complex_scalar(base.outputs)
        if (grad is not None or hvp is not None) and base.m != 1 and not holomorphic:
            raise UsageError(
                f"grad= and hvp= are for scalar functions, but fn returns {base.m} "
                "values: pass jacobian=, vjp= or jvp= instead"
            )
        self._base = base  # before __init__, which sets the notes (they are the base's)
        super().__init__(base.x0, base.inputs, base.outputs, eps=base.eps, notes=base.notes)
        self.framework = base.framework  # type: ignore[misc]
        self._grad, self._jacobian = grad, jacobian
        self._vjp, self._jvp, self._hvp = vjp, jvp, hvp
        self._positions = base.positions
        self._analytic_eps = float(np.finfo(np.float64).eps)

    @property
    def notes(self) -> tuple[str, ...]:
        """The base's notes, read when asked: its adapter adds some as the check runs (a
        vmap fallback found on the first batched call)."""
        return self._base.notes

    @notes.setter
    def notes(self, value: tuple[str, ...]) -> None:
        self._base.notes = value

    @property
    def analytic_eps(self) -> float:
        """Unit round-off of the dtype the user's derivatives came back in (float32: 1.2e-7)."""
        return self._analytic_eps

    def _note_dtype(self, arrays: list[np.ndarray] | np.ndarray) -> None:
        for arr in arrays if isinstance(arrays, list) else [arrays]:
            if np.issubdtype(arr.dtype, np.floating):
                self._analytic_eps = max(self._analytic_eps, float(np.finfo(arr.dtype).eps))

    def value(self, x: np.ndarray) -> np.ndarray:
        return self._base.value(x)

    def values(self, xs: np.ndarray) -> np.ndarray:
        return self._base.values(xs)

    def _args(self, x: np.ndarray) -> tuple[Any, ...]:
        return self._base.native_inputs(x)

    def scope(self) -> AbstractContextManager[Any]:
        return self._base.scope()

    def session(self) -> AbstractContextManager[Any]:
        return self._base.session()

    def _call(self, derivative: UserFn, *args: Any) -> Any:
        # NaN/inf in a derivative is a verdict ("nonfinite"), so NumPy's warning about
        # producing it would only turn the verdict into a crash under -W error.
        with np.errstate(all="ignore"):
            return derivative(*args)

    def _per_input(self, result: Any, what: str) -> np.ndarray:
        """A per-input derivative (grad, vjp, hvp) as one flat vector of length n."""
        flat = self._base.flat_inputs(result)
        if flat is not None:  # pytree-shaped results, matched by key path
            return np.asarray(flat, dtype=np.float64)
        parts = _flat_per_leaf(result, self.inputs, self._positions, what)
        self._note_dtype(parts)
        return np.concatenate(parts)

    def _full_jacobian(self, x: np.ndarray, derivative: UserFn, what: str) -> np.ndarray:
        """The (m, n) Jacobian from jacobian= (or grad= of a complex scalar: f'(z))."""
        with self.scope():
            result = self._call(derivative, *self._args(x))
            if any(len(g) == 2 for g in _arrays([*self.outputs, *self.inputs])):
                return _holomorphic(result, self.outputs, self.inputs, self._positions)
            out_shape = self.outputs[0].shape if len(self.outputs) == 1 else (self.m,)
            try:
                parts = _flat_per_leaf(result, self.inputs, self._positions, what, out_shape)
            except UsageError:
                if len(self.inputs) == 1 and as_array(result).size == self.m * self.n:
                    parts = [as_array(result).reshape(self.m, self.n)]
                else:
                    raise
        self._note_dtype(parts)
        return np.concatenate([p.reshape(self.m, -1) for p in parts], axis=1)

    def vjp(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        if self._vjp is None and self._grad is None and self._jacobian is None:
            raise Unsupported("no reverse-mode derivative was given (grad=, jacobian= or vjp=)")
        if self._vjp is None and (self._grad is None or self.m != 1):
            derivative, what = (
                (self._jacobian, "jacobian") if self._grad is None else (self._grad, "grad")
            )
            assert derivative is not None
            product: np.ndarray = self._full_jacobian(x, derivative, what).T @ u
            return product
        with self.scope():
            if self._vjp is not None:
                cotangent = self._base.native_outputs(u)
                return self._per_input(self._call(self._vjp, *self._args(x), cotangent), "vjp")
            assert self._grad is not None
            gradient = self._per_input(self._call(self._grad, *self._args(x)), "grad")
            return gradient * float(u[0])

    def jvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        if self._jvp is None:
            # grad= and jacobian= already serve reverse mode; forward mode from the same
            # numbers would only compare them with themselves.
            raise Unsupported("no separate forward-mode derivative was given (jvp=)")
        with self.scope():
            tangents = self._base.native_tangents(v)
            tangent = tangents[0] if len(tangents) == 1 else tangents
            result = self._call(self._jvp, *self._args(x), tangent)
            count = len(_arrays(self.outputs))
            parts = _flat_per_leaf(result, self.outputs, tuple(range(count)), "jvp")
        self._note_dtype(parts)
        return np.concatenate(parts)

    def gradient_map(self, u: np.ndarray) -> Differentiable:
        if self._hvp is None:
            raise Unsupported(
                "second derivatives need hvp= (a Hessian-vector product) for hand-written gradients"
            )
        return _UserGradient(self, u)


class _UserGradient(Differentiable):
    """x ↦ u·grad(x) of a scalar function, with the user's hvp as its derivative."""

    def __init__(self, outer: UserDerivatives, u: np.ndarray) -> None:
        outputs = tuple(
            Leaf(f"d/d{leaf.name}", leaf.shape, "float64", leaf.offset) for leaf in outer.inputs
        )
        super().__init__(outer.x0, outer.inputs, outputs, eps=outer.analytic_eps)
        self.framework = outer.framework  # type: ignore[misc]
        self._outer, self._scale = outer, float(u[0])

    def value(self, x: np.ndarray) -> np.ndarray:
        return self._outer.vjp(x, np.array([self._scale]))

    def _hessian_times(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        outer = self._outer
        assert outer._hvp is not None
        with outer.scope():
            tangents = outer._base.native_tangents(v)
            tangent = tangents[0] if len(tangents) == 1 else tangents
            result = outer._call(outer._hvp, *outer._args(x), tangent)
            product: np.ndarray = self._scale * outer._per_input(result, "hvp")
            return product

    def vjp(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self._hessian_times(x, u)  # a Hessian is symmetric: one product serves both modes

    def jvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        raise Unsupported(
            "hvp= is checked once, in reverse mode: for a symmetric Hessian "
            "forward mode would repeat the same products"
        )
