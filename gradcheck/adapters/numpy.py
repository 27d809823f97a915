"""NumPy: functions of arrays, with derivatives the user writes by hand.

NumPy has no autodiff, so the derivatives to check come from the user (`grad=`, `jacobian=`,
`vjp=`, `jvp=`, `hvp=`; see `_user_derivatives`). This adapter only evaluates the function on
float64 copies and maps between the flat vector and the user's arrays: complex arrays as their
real and imaginary parts, entries that are not finite held (`_partial`).

Note: the complex convention of NumPy derivatives
    NumPy has no convention of its own, so hand-written reverse-mode derivatives follow
    PyTorch's: the gradient of a real loss L with respect to z = x + i·y is ∂L/∂x + i·∂L/∂y
    (= 2·∂L/∂z̄), the direction of steepest ascent, which is what a gradient step
    z -= lr·grad needs; vjp= receives a complex output's cotangent in the same form and
    returns grad_output·conj(f'(z)) for a holomorphic f. JAX's gradient is the conjugate of
    this one: a rule written for JAX is checked as `np.conj` of it, and without that it fails
    with the forgotten conjugate as the likely cause. Forward mode and f'(z) have no such
    choice (see "Note: complex values in hand-written derivatives" in `_user_derivatives`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from .._differentiable import Differentiable, Leaf, leaves_of
from .._errors import UsageError
from ._common import (
    Adapter,
    Wrt,
    describe,
    dtype_name,
    flatten,
    is_float,
    part,
    select_positions,
    unflatten,
)
from ._partial import Placement

__all__ = ["NumpyAdapter", "NumpyFlat"]

COMPLEX_NOTE = (
    "complex values are checked as their real and imaginary parts (.real/.imag), hand-written "
    "reverse-mode derivatives in PyTorch's convention: grad= and vjp= return ∂L/∂re + "
    "i·∂L/∂im for a complex input (JAX's grad is its conjugate: pass np.conj of it), and "
    "vjp= gets a complex output's cotangent in that form"
)


class NumpyAdapter(Adapter):
    """NumPy arrays and Python floats (complex ones as real and imaginary parts)."""

    framework: ClassVar[str] = "numpy"

    def handles(self, obj: object) -> bool:
        return _is_array(obj) or isinstance(obj, float)

    def bind(
        self, fn: Callable[..., Any], inputs: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
    ) -> Differentiable:
        positions = select_positions(
            wrt, [_differentiable(a) for a in inputs], [_describe(a) for a in inputs]
        )
        return NumpyFlat(fn, inputs, kwargs, positions)


class NumpyFlat(Differentiable):
    """fn(*inputs, **kwargs) of NumPy arrays, as a function of the inputs at `positions`."""

    framework = "numpy"

    def __init__(
        self,
        fn: Callable[..., Any],
        args: Sequence[Any],
        kwargs: dict[str, Any],
        positions: tuple[int, ...],
    ) -> None:
        self._fn, self._args, self._kwargs = fn, tuple(args), kwargs
        self._placement = Placement(
            [
                (f"input[{i}]", np.asarray(args[i]), dtype_name(np.asarray(args[i])))
                for i in positions
            ]
        )
        # A Python float argument is rebuilt as a Python float, not a 0-d array.
        self._scalar = [not _is_array(args[i]) for i in positions]
        notes = [
            f"input[{i}] ({_describe(arg)}) is passed through unchanged, not differentiated"
            for i, arg in enumerate(args)
            if i not in positions and _is_array(arg)
        ]
        notes += self._placement.notes
        super().__init__(
            self._placement.x0,
            self._placement.leaves,
            (),
            notes=tuple(notes),
            positions=positions,
        )
        with np.errstate(all="ignore"):  # a NaN at x0 is a verdict, as in `value`
            result = fn(*self.native_inputs(self.x0), **kwargs)
        self.outputs, self.eps = _output_leaves(result)
        self._template = result
        self._complex_out = [np.iscomplexobj(v) for _, v in flatten(result, "output", _is_array)]
        if self._placement.has_complex or any(self._complex_out):
            self.notes = (*self.notes, COMPLEX_NOTE)

    def value(self, x: np.ndarray) -> np.ndarray:
        # Finite differences probe points outside the function's domain on purpose (log of a
        # negative, exp overflow); the resulting NaN/inf is handled, so NumPy's warnings about
        # it are noise, and errors under a warnings-as-errors test configuration.
        with np.errstate(all="ignore"):
            result = self._fn(*self.native_inputs(x), **self._kwargs)
        named = flatten(result, "output", _is_array)
        if len(named) != len(self._complex_out):
            raise UsageError("the function returned a different output structure at another point")
        parts = []
        for (_, value), is_complex in zip(named, self._complex_out, strict=True):
            arr = np.asarray(value)
            parts += [arr.real, arr.imag] if is_complex else [arr]
        return np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts])

    def native_inputs(self, x: np.ndarray) -> tuple[Any, ...]:
        """All positional arguments, the checked ones rebuilt from x as float64 (complex128)
        copies."""
        return self._with_checked(self._placement.arrays(x))

    def _with_checked(self, arrays: Sequence[np.ndarray]) -> tuple[Any, ...]:
        args = [np.array(a, copy=True) if _is_array(a) else a for a in self._args]
        for array, position, scalar in zip(arrays, self.positions, self._scalar, strict=True):
            args[position] = array.item() if scalar else np.array(array, copy=True)
        return tuple(args)

    def native_outputs(self, flat: np.ndarray) -> Any:
        """A flat output-sized vector in the shape of fn's result (a cotangent); a complex
        output's is gr + i·gi (see "Note: the complex convention of NumPy derivatives")."""
        parts, leaves = [], iter(self.outputs)
        for is_complex in self._complex_out:
            leaf = next(leaves)
            parts.append(
                part(flat, leaf) + 1j * part(flat, next(leaves)) if is_complex else part(flat, leaf)
            )
        return unflatten(self._template, parts, _is_array)

    def native_tangents(self, flat: np.ndarray) -> tuple[Any, ...]:
        """A flat input-sized vector as one array per checked input (tangents: dre + i·dim
        for a complex one, zero at held entries)."""
        return tuple(self._placement.arrays(flat, tangent=True))

    def flat_inputs(self, result: Any) -> np.ndarray | None:
        """A per-input derivative of complex inputs or of inputs with held entries, as the
        flat vector (PyTorch's convention); None for plain real inputs."""
        return self._placement.per_input(result, np.asarray, positions=self.positions)


def _output_leaves(result: Any) -> tuple[tuple[Leaf, ...], float]:
    """Leaves and unit round-off of a NumPy function's result (a complex output is two
    leaves, "<name>.real" and "<name>.imag").

    Raises:
        UsageError: integer, boolean or empty outputs, or unsupported containers.
    """
    triples, eps = [], float(np.finfo(np.float64).eps)
    for name, value in flatten(result, "output", _is_array):
        arr = np.asarray(value)
        if not np.issubdtype(arr.dtype, np.inexact):
            raise UsageError(
                f"{name} is {_describe(value)}: a differentiable output must be floating point"
            )
        eps = max(eps, float(np.finfo(arr.dtype).eps))
        dtype = str(arr.dtype)
        if np.iscomplexobj(arr):
            triples += [(f"{name}.real", arr.shape, dtype), (f"{name}.imag", arr.shape, dtype)]
        else:
            triples.append((name, arr.shape, dtype))
    return leaves_of(triples), eps


def _is_array(obj: object) -> bool:
    return isinstance(obj, (np.ndarray, np.generic))


def _differentiable(obj: object) -> bool:
    """A float or complex array, or a Python float or complex."""
    return (
        is_float(obj, _is_array)
        or isinstance(obj, complex)
        or dtype_name(obj).startswith("complex")
    )


def _describe(obj: object) -> str:
    """Arrays by dtype and shape; anything else (a Python int) by its type."""
    return describe(obj) if _is_array(obj) else type(obj).__name__
