"""NumPy: functions of arrays, with derivatives the user writes by hand.

NumPy has no autodiff, so the derivatives to check come from the user (`grad=`, `jacobian=`,
`vjp=`, `jvp=`, `hvp=`; see `_user_derivatives`). This adapter only evaluates the function on
float64 copies and maps between the flat vector and the user's arrays.
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
    flatten,
    input_leaves,
    part,
    positions_to_check,
    unflatten,
)

__all__ = ["NumpyAdapter", "NumpyFlat"]


class NumpyAdapter(Adapter):
    """NumPy arrays and Python floats."""

    framework: ClassVar[str] = "numpy"

    def handles(self, obj: object) -> bool:
        return _is_array(obj) or isinstance(obj, float)

    def bind(
        self, fn: Callable[..., Any], inputs: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
    ) -> Differentiable:
        positions = positions_to_check(inputs, wrt, _is_array, _describe)
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
        inputs, x0 = input_leaves(args, positions, np.asarray)
        # A Python float argument is rebuilt as a Python float, not a 0-d array.
        self._scalar = [not _is_array(args[i]) for i in positions]
        notes = tuple(
            f"input[{i}] ({_describe(arg)}) is passed through unchanged, not differentiated"
            for i, arg in enumerate(args)
            if i not in positions and _is_array(arg)
        )
        super().__init__(x0, inputs, (), notes=notes, positions=positions)
        result = fn(*self.native_inputs(x0), **kwargs)
        self.outputs, self.eps = _output_leaves(result)
        self._template = result

    def value(self, x: np.ndarray) -> np.ndarray:
        # Finite differences probe points outside the function's domain on purpose (log of a
        # negative, exp overflow); the resulting NaN/inf is handled, so NumPy's warnings about
        # it are noise, and errors under a warnings-as-errors test configuration.
        with np.errstate(all="ignore"):
            result = self._fn(*self.native_inputs(x), **self._kwargs)
        named = flatten(result, "output", _is_array)
        if len(named) != len(self.outputs):
            raise UsageError("the function returned a different output structure at another point")
        return np.concatenate([np.asarray(v, dtype=np.float64).ravel() for _, v in named])

    def native_inputs(self, x: np.ndarray) -> tuple[Any, ...]:
        """All positional arguments, the checked ones rebuilt from x as float64 copies."""
        args = [np.array(a, copy=True) if _is_array(a) else a for a in self._args]
        for leaf, position, scalar in zip(self.inputs, self.positions, self._scalar, strict=True):
            chunk = part(x, leaf).copy()
            args[position] = float(chunk) if scalar else chunk
        return tuple(args)

    def native_outputs(self, flat: np.ndarray) -> Any:
        """A flat output-sized vector in the shape of fn's result (for cotangents)."""
        return unflatten(self._template, [part(flat, leaf) for leaf in self.outputs], _is_array)

    def native_tangents(self, flat: np.ndarray) -> tuple[Any, ...]:
        """A flat input-sized vector as one array per checked input (for tangents)."""
        return tuple(part(flat, leaf) for leaf in self.inputs)


def _output_leaves(result: Any) -> tuple[tuple[Leaf, ...], float]:
    """Leaves and unit round-off of a NumPy function's result.

    Raises:
        UsageError: complex, integer, boolean or empty outputs, or unsupported containers.
    """
    triples, eps = [], float(np.finfo(np.float64).eps)
    for name, value in flatten(result, "output", _is_array):
        arr = np.asarray(value)
        if np.iscomplexobj(arr):
            raise UsageError(f"{name} is complex ({arr.dtype}): only real outputs are checked")
        if not np.issubdtype(arr.dtype, np.floating):
            raise UsageError(
                f"{name} is {_describe(value)}: a differentiable output must be floating point"
            )
        eps = max(eps, float(np.finfo(arr.dtype).eps))
        triples.append((name, arr, str(arr.dtype)))
    leaves = leaves_of(triples)
    return leaves, eps


def _is_array(obj: object) -> bool:
    return isinstance(obj, (np.ndarray, np.generic))


def _describe(obj: object) -> str:
    """Arrays by dtype and shape; anything else (a Python int) by its type."""
    return describe(obj) if _is_array(obj) else type(obj).__name__
