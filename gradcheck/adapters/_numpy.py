"""NumPy: functions of arrays, with derivatives the user writes by hand.

NumPy has no autodiff, so the derivatives to check come from the user (`grad=`, `jacobian=`,
`vjp=`, `jvp=`, `hvp=`; see `_user_derivatives`). This adapter only evaluates the function on
float64 copies and maps between the flat vector and the user's arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from .._errors import UsageError
from . import Adapter, Differentiable, Leaf, Wrt, leaves_of, select_positions
from ._structure import flatten, unflatten


def _is_array(obj: object) -> bool:
    return isinstance(obj, (np.ndarray, np.generic))


def describe(obj: object) -> str:
    """ "float32 array of shape (3, 2)", "int", …: for messages."""
    if _is_array(obj):
        arr = np.asarray(obj)
        return f"{arr.dtype} array of shape {arr.shape}"
    return type(obj).__name__


def _is_float(obj: object) -> bool:
    if isinstance(obj, bool):
        return False
    if isinstance(obj, float):
        return True
    return _is_array(obj) and np.issubdtype(np.asarray(obj).dtype, np.floating)


def flat_outputs(result: Any, name: str = "output") -> tuple[tuple[Leaf, ...], np.ndarray, float]:
    """Leaves, flat float64 values and unit round-off of a NumPy function's result.

    Raises:
        UsageError: complex, integer, boolean or empty outputs, or unsupported containers.
    """
    named = flatten(result, name, _is_array)
    triples, parts, eps = [], [], float(np.finfo(np.float64).eps)
    for leaf_name, value in named:
        arr = np.asarray(value)
        if np.iscomplexobj(arr):
            raise UsageError(f"{leaf_name} is complex ({arr.dtype}): only real outputs are checked")
        if not np.issubdtype(arr.dtype, np.floating):
            raise UsageError(
                f"{leaf_name} is {describe(value)}: a differentiable output must be floating point"
            )
        eps = max(eps, float(np.finfo(arr.dtype).eps))
        triples.append((leaf_name, arr, str(arr.dtype)))
        parts.append(arr.astype(np.float64).ravel())
    leaves = leaves_of(triples)
    if not sum(leaf.size for leaf in leaves):
        raise UsageError(f"{name} is empty: there is nothing to differentiate")
    return leaves, np.concatenate(parts), eps


def validate_point(name: str, arr: np.ndarray) -> None:
    """Reject inputs no derivative can be checked at: empty, or not finite."""
    if arr.size == 0:
        raise UsageError(f"{name} is empty (shape {arr.shape}): there is nothing to differentiate")
    if not np.isfinite(arr).all():
        bad = np.unravel_index(int(np.flatnonzero(~np.isfinite(arr))[0]), arr.shape)
        raise UsageError(
            f"{name} contains {arr[bad]} at {tuple(int(i) for i in bad)}: "
            "derivatives can only be checked at finite points"
        )


class NumpyFunction(Differentiable):
    """fn(*inputs, **kwargs) of NumPy arrays, as a function of the `wrt` inputs."""

    framework = "numpy"

    def __init__(
        self,
        fn: Callable[..., Any],
        args: Sequence[Any],
        kwargs: dict[str, Any],
        positions: tuple[int, ...],
    ) -> None:
        self._fn, self._args, self._kwargs, self._positions = fn, tuple(args), kwargs, positions
        arrays = [np.asarray(args[i]) for i in positions]
        inputs = leaves_of(
            [(f"input[{i}]", a, str(a.dtype)) for i, a in zip(positions, arrays, strict=True)]
        )
        x0 = np.concatenate([a.astype(np.float64).ravel() for a in arrays])
        self._scalar = [
            a.ndim == 0 and not _is_array(args[i]) for i, a in zip(positions, arrays, strict=True)
        ]
        super().__init__(x0, inputs, (), notes=self._pass_through_notes())
        result = fn(*self.native_inputs(x0), **kwargs)
        self.outputs, _, self.eps = flat_outputs(result)
        self._template = result

    def _pass_through_notes(self) -> tuple[str, ...]:
        return tuple(
            f"input[{i}] ({describe(arg)}) is passed through unchanged, not differentiated"
            for i, arg in enumerate(self._args)
            if i not in self._positions and _is_array(arg)
        )

    @property
    def positions(self) -> tuple[int, ...]:
        return self._positions

    def native_inputs(self, x: np.ndarray) -> tuple[Any, ...]:
        """All positional arguments, the checked ones rebuilt from x as float64 copies."""
        args = [np.array(a, copy=True) if _is_array(a) else a for a in self._args]
        for leaf, position, scalar in zip(self.inputs, self._positions, self._scalar, strict=True):
            chunk = x[leaf.offset : leaf.offset + leaf.size].reshape(leaf.shape).copy()
            args[position] = float(chunk) if scalar else chunk
        return tuple(args)

    def native_outputs(self, flat: np.ndarray) -> Any:
        """A flat output-sized vector in the shape of fn's result (for cotangents)."""
        parts = [
            flat[leaf.offset : leaf.offset + leaf.size].reshape(leaf.shape) for leaf in self.outputs
        ]
        return unflatten(self._template, parts, _is_array)

    def native_tangents(self, flat: np.ndarray) -> tuple[Any, ...]:
        """A flat input-sized vector as one array per checked input (for tangents)."""
        return tuple(
            flat[leaf.offset : leaf.offset + leaf.size].reshape(leaf.shape) for leaf in self.inputs
        )

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


class NumpyAdapter(Adapter):
    """NumPy arrays and Python floats."""

    framework: ClassVar[str] = "numpy"
    module: ClassVar[str] = "numpy"

    def handles(self, obj: object) -> bool:
        return _is_array(obj) or (isinstance(obj, float))

    def bind(
        self, fn: Callable[..., Any], inputs: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
    ) -> Differentiable:
        for i, arg in enumerate(inputs):
            if _is_array(arg) and np.iscomplexobj(arg):
                raise UsageError(
                    f"input[{i}] is {describe(arg)}: complex inputs are not supported; "
                    "check the real and imaginary parts as separate real inputs"
                )
        positions = select_positions(
            wrt, [_is_float(a) for a in inputs], [describe(a) for a in inputs]
        )
        for i in positions:
            validate_point(f"input[{i}]", np.asarray(inputs[i]))
        return NumpyFunction(fn, inputs, kwargs, positions)
