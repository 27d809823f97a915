"""Derivatives the user wrote by hand (`grad=`, `jacobian=`, `vjp=`, `jvp=`, `hvp=`).

They replace the framework's autodiff as the analytic side of the check, for any framework:
the callables receive the same positional arguments as fn (as the framework's arrays, on
float64 copies) and may return that framework's arrays. Shapes are checked against the inputs
and outputs they belong to, so a wrong shape is a clear UsageError rather than a broadcast.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from ._differentiable import Differentiable, Leaf, Unsupported
from ._errors import UsageError

UserFn = Callable[..., Any]


def as_array(obj: Any) -> np.ndarray:
    """Any framework's array as float64 NumPy, without importing the framework."""
    if hasattr(obj, "detach"):  # torch
        obj = obj.detach().cpu().numpy()
    elif hasattr(obj, "numpy") and not isinstance(obj, np.ndarray):  # tensorflow eager
        obj = obj.numpy()
    arr = np.asarray(obj)
    if np.iscomplexobj(arr) or arr.dtype == object:
        raise UsageError(
            f"a user-supplied derivative returned {arr.dtype} values; expected real floats"
        )
    return arr


def _flat_per_leaf(
    result: Any,
    leaves: tuple[Leaf, ...],
    positions: tuple[int, ...],
    what: str,
    trailing: tuple[int, ...] = (),
) -> list[np.ndarray]:
    """One array per leaf from a single array or a tuple (per checked input or per input)."""
    if isinstance(result, (tuple, list)):
        parts = list(result)
        if len(parts) != len(leaves):
            if len(parts) > max(positions, default=0):
                parts = [parts[p] for p in positions]
            else:
                raise UsageError(
                    f"{what} returned {len(parts)} arrays for {len(leaves)} checked inputs"
                )
    elif len(leaves) == 1:
        parts = [result]
    else:
        raise UsageError(
            f"{what} returned one array but {len(leaves)} inputs are checked: "
            "return a tuple with one array per input"
        )
    out = []
    for leaf, part in zip(leaves, parts, strict=True):
        arr = as_array(part)
        expected = trailing + leaf.shape
        if arr.shape != expected and not (
            arr.size == int(np.prod(expected)) and arr.ndim <= 1 + len(trailing)
        ):
            raise UsageError(
                f"{what} returned shape {arr.shape} for {leaf.name}, expected {expected}"
            )
        out.append(
            arr.astype(np.float64).reshape(*trailing, leaf.size)
            if trailing
            else arr.astype(np.float64).ravel()
        )
    return out


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
        if (grad is not None or hvp is not None) and base.m != 1:
            raise UsageError(
                f"grad= and hvp= are for scalar functions, but fn returns {base.m} "
                "values: pass jacobian=, vjp= or jvp= instead"
            )
        super().__init__(base.x0, base.inputs, base.outputs, eps=base.eps, notes=base.notes)
        self.framework = base.framework  # type: ignore[misc]
        self._base, self._grad, self._jacobian = base, grad, jacobian
        self._vjp, self._jvp, self._hvp = vjp, jvp, hvp
        self._positions = base.positions
        self._analytic_eps = float(np.finfo(np.float64).eps)

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

    def _full_jacobian(self, x: np.ndarray) -> np.ndarray:
        assert self._jacobian is not None
        with self.scope():
            result = self._call(self._jacobian, *self._args(x))
            out_shape = self.outputs[0].shape if len(self.outputs) == 1 else (self.m,)
            try:
                parts = _flat_per_leaf(result, self.inputs, self._positions, "jacobian", out_shape)
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
        if self._vjp is None and self._grad is None:
            product: np.ndarray = self._full_jacobian(x).T @ u
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
            parts = _flat_per_leaf(result, self.outputs, tuple(range(len(self.outputs))), "jvp")
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
