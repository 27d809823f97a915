"""TensorFlow (and Keras 3 on the TensorFlow backend): GradientTape, ForwardAccumulator, pfor.

Everything differentiable here is a `TensorflowMap`: a TF-level function `_call(xs)` from one
tensor per input leaf to one tensor per output leaf. Reverse mode is a `GradientTape`, forward
mode a `tf.autodiff.ForwardAccumulator`, batched values `tf.vectorized_map`, and the gradient
map x -> J(x)^T u is again a `TensorflowMap` whose `_call` runs a tape, so nested tapes give
Hessian-vector products and every higher order. Plain functions (eager or `tf.function`) are
`TensorflowFunction`; Keras layers and models live in `_tensorflow_keras`.

Inputs are promoted to float64 copies; a function that cannot run in float64 (it mixes its
input with float32 tensors it captured, or a `tf.function` pins float32 in its signature) is
evaluated in the user's dtype instead, and the notes say so. No TF global state is touched.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from .._errors import UsageError
from . import Adapter, Differentiable, Wrt, leaves_of, select_positions
from ._numpy import validate_point
from ._tensorflow_map import TensorflowMap


def _tf() -> Any:
    import tensorflow as tf  # deferred on purpose; see the adapters/__init__.py docstring

    return tf


def is_tf_array(obj: object) -> bool:
    """A TF tensor or variable, or a Keras variable (Keras 3 tensors belong to TF here)."""
    tf = _tf()
    if tf.is_tensor(obj) or isinstance(obj, tf.Variable):
        return True
    keras = sys.modules.get("keras")
    return (keras is not None and isinstance(obj, keras.Variable)
            and keras.backend.backend() == "tensorflow")


def is_leaf(obj: object) -> bool:
    """An array of the outputs' flat structure: TF tensors and NumPy arrays."""
    return isinstance(obj, (np.ndarray, np.generic)) or is_tf_array(obj)


def to_numpy(obj: Any) -> np.ndarray:
    """A tensor, variable or array as NumPy in its own dtype (a copy for tensors)."""
    if hasattr(obj, "numpy") and not isinstance(obj, np.ndarray):
        return np.asarray(obj.numpy())
    return np.asarray(obj)


def dtype_name(obj: Any) -> str:
    """The dtype's name: "float32", "bfloat16", "int32", …"""
    dtype = getattr(obj, "dtype", None)
    if dtype is None or isinstance(obj, (float, int)):
        return "float64" if isinstance(obj, float) else type(obj).__name__
    return str(getattr(dtype, "name", dtype))


def describe(obj: Any) -> str:
    """"float32 tensor of shape (3, 2)", "float32 NumPy array of shape (3,)", …: for messages."""
    if is_tf_array(obj):
        kind = "variable" if "Variable" in type(obj).__name__ else "tensor"
        return f"{dtype_name(obj)} {kind} of shape {tuple(obj.shape)}"
    if isinstance(obj, (np.ndarray, np.generic)):
        return f"{obj.dtype} NumPy array of shape {np.shape(obj)}"
    return type(obj).__name__


def is_float(obj: Any) -> bool:
    """Whether obj can be differentiated: a real floating tensor/array or a Python float."""
    if isinstance(obj, bool):
        return False
    if isinstance(obj, float):
        return True
    if not (is_leaf(obj)):
        return False
    name = dtype_name(obj)
    return name.startswith(("float", "bfloat"))


def reject_complex(inputs: Sequence[Any]) -> None:
    """Complex inputs have no real gradient to check: say how to split them."""
    for i, arg in enumerate(inputs):
        if is_leaf(arg) and dtype_name(arg).startswith("complex"):
            raise UsageError(f"input[{i}] is {describe(arg)}: complex inputs are not supported; "
                             "check the real and imaginary parts as separate real inputs")


def is_dtype_error(error: BaseException) -> bool:
    """Whether a failure in float64 looks like a dtype clash (so the user's dtype may work)."""
    tf = _tf()
    if not isinstance(error, (TypeError, ValueError, tf.errors.InvalidArgumentError)):
        return False
    text = str(error).lower()
    return any(word in text for word in ("float", "double", "dtype", "input_signature"))


class TensorflowFunction(TensorflowMap):
    """fn(*inputs, **kwargs) of TF tensors (or NumPy arrays), as a function of the wrt inputs."""

    def __init__(self, fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any],
                 positions: tuple[int, ...], *, native: bool) -> None:
        tf = _tf()
        self._fn, self._args, self._kwargs, self._positions = fn, tuple(args), kwargs, positions
        arrays = [to_numpy(args[i]) if not isinstance(args[i], float) else np.asarray(args[i])
                  for i in positions]
        inputs = leaves_of([(f"input[{i}]", a, dtype_name(args[i]))
                            for i, a in zip(positions, arrays, strict=True)])
        x0 = np.concatenate([a.astype(np.float64).ravel() for a in arrays])
        self._native = native
        dtypes = [tf.as_dtype(leaf.dtype) if native else tf.float64 for leaf in inputs]
        notes = list(self._input_notes())
        if native:
            notes.append("the function cannot run on float64 copies (it clashes with float32 "
                         "tensors it holds, or its tf.function signature pins the dtype): it is "
                         "evaluated in the user's dtype, so the numbers are only as precise as "
                         f"{', '.join(sorted({leaf.dtype for leaf in inputs}))}")
        super().__init__(x0, inputs, dtypes, notes)

    def _input_notes(self) -> list[str]:
        notes = []
        for i, arg in enumerate(self._args):
            if i in self._positions:
                if isinstance(arg, (np.ndarray, np.generic)):
                    notes.append(f"input[{i}] ({describe(arg)}) is passed to the function as a "
                                 "float64 tf.Tensor")
            elif is_float(arg) and not isinstance(arg, float) and not self._native:
                notes.append(f"input[{i}] ({describe(arg)}) is not differentiated (not in wrt); "
                             "the function gets a float64 copy so that dtypes match")
            elif is_leaf(arg):
                notes.append(f"input[{i}] ({describe(arg)}) is passed through unchanged, "
                             "not differentiated")
        return notes

    def _promote(self, arg: Any) -> Any:
        """A float64 copy of a floating argument that is not checked (it must match dtypes)."""
        if self._native or not is_float(arg) or isinstance(arg, float):
            return arg
        if isinstance(arg, (np.ndarray, np.generic)):
            return np.asarray(arg, dtype=np.float64).copy()
        return _tf().cast(_tf().convert_to_tensor(arg), _tf().float64)

    def _arguments(self, xs: Sequence[Any]) -> list[Any]:
        args = [self._promote(a) for a in self._args]
        for position, tensor in zip(self._positions, xs, strict=True):
            args[position] = tensor
        return args

    def _call(self, xs: Sequence[Any]) -> list[Any]:
        result = self._fn(*self._arguments(xs), **self._kwargs)
        return self._flat(result)

    @property
    def positions(self) -> tuple[int, ...]:
        return self._positions

    def native_inputs(self, x: np.ndarray) -> tuple[Any, ...]:
        """All positional arguments, the checked ones rebuilt from x as float64 tensors."""
        return tuple(self._arguments(self._split(x)))

    def native_vjp(self, u: np.ndarray) -> np.ndarray | None:
        """J(x0)^T u with the user's own tensors and dtypes (for the dtype audit)."""
        if self._native or all(leaf.dtype == "float64" for leaf in self.inputs):
            return None
        tf = _tf()
        xs = [tf.constant(to_numpy(self._args[i])) if not isinstance(self._args[i], float)
              else tf.constant(self._args[i], tf.float32) for i in self._positions]
        args = list(self._args)
        for position, tensor in zip(self._positions, xs, strict=True):
            args[position] = tensor
        with tf.GradientTape() as tape:
            tape.watch(xs)
            outs = self._flat(self._fn(*args, **self._kwargs))
        return self._gradient(tape, outs, xs, u)


class TensorflowAdapter(Adapter):
    """TF tensors, variables and tf.functions; Keras 3 layers and models on the TF backend."""

    framework: ClassVar[str] = "tensorflow"
    module: ClassVar[str] = "tensorflow"

    def __init__(self) -> None:
        self._tf = _tf()

    def handles(self, obj: object) -> bool:
        tf = self._tf
        if is_tf_array(obj) or isinstance(obj, tf.types.experimental.PolymorphicFunction):
            return True
        keras = sys.modules.get("keras")
        return (keras is not None and isinstance(obj, keras.Layer)
                and keras.backend.backend() == "tensorflow")

    def bind(
        self, fn: Callable[..., Any], inputs: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
    ) -> Differentiable:
        keras = sys.modules.get("keras")
        if keras is not None and isinstance(fn, keras.Layer):
            from ._tensorflow_keras import bind_keras

            return bind_keras(fn, inputs, kwargs, wrt)
        reject_complex(inputs)
        positions = select_positions(wrt, [is_float(a) for a in inputs],
                                     [describe(a) for a in inputs])
        for i in positions:
            validate_point(f"input[{i}]", np.asarray(to_numpy(inputs[i]), dtype=np.float64))
        try:
            return TensorflowFunction(fn, inputs, kwargs, positions, native=False)
        except Exception as error:
            if not is_dtype_error(error) or all(dtype_name(inputs[i]) == "float64"
                                                for i in positions):
                raise
        return TensorflowFunction(fn, inputs, kwargs, positions, native=True)

