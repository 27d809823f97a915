"""TensorFlow (and Keras 3 on the TensorFlow backend): GradientTape, ForwardAccumulator, pfor.

Everything differentiable here is a `TensorflowFlat` (`_flat`): a TF-level function
`_call(xs)` from one tensor per input leaf to one tensor per output leaf. Reverse mode is a
`GradientTape`, forward mode a `tf.autodiff.ForwardAccumulator`, batched values
`tf.vectorized_map`, and the gradient map x -> J(x)^T u is again a `TensorflowFlat` whose
`_call` runs a tape, so nested tapes give Hessian-vector products and every higher order.
Plain functions (eager or `tf.function`) are `_function.TensorflowFunction`; Keras layers and
models are `_keras.KerasModel`.

Inputs are promoted to float64 copies; a function that cannot run in float64 (it mixes its
input with float32 tensors it captured, or a `tf.function` pins float32 in its signature) is
evaluated in the user's dtype instead (`_common.retry_in_own_dtype`), and the notes say so. No
TF global state is touched.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from ..._differentiable import Differentiable
from .._common import Adapter, Wrt, dtype_name, retry_in_own_dtype, select_positions, validate_point
from ._flat import TensorflowFlat
from ._function import TensorflowFunction
from ._keras import bind_keras
from ._tensors import describe_tf, is_float, is_tf_array, reject_complex, tf_module, to_numpy

__all__ = ["TensorflowAdapter", "TensorflowFlat"]


class TensorflowAdapter(Adapter):
    """TF tensors, variables and tf.functions; Keras 3 layers and models on the TF backend."""

    framework: ClassVar[str] = "tensorflow"

    def __init__(self) -> None:
        self._tf = tf_module()

    def handles(self, obj: object) -> bool:
        if is_tf_array(obj) or isinstance(obj, self._tf.types.experimental.PolymorphicFunction):
            return True
        keras = sys.modules.get("keras")
        return (
            keras is not None
            and isinstance(obj, keras.Layer)
            and keras.backend.backend() == "tensorflow"
        )

    def bind(
        self, fn: Callable[..., Any], inputs: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
    ) -> Differentiable:
        keras = sys.modules.get("keras")
        if keras is not None and isinstance(fn, keras.Layer):
            return bind_keras(fn, inputs, kwargs, wrt)
        reject_complex(inputs)
        positions = select_positions(
            wrt, [is_float(a) for a in inputs], [describe_tf(a) for a in inputs]
        )
        for i in positions:
            validate_point(f"input[{i}]", np.asarray(to_numpy(inputs[i]), dtype=np.float64))

        def clash(error: Exception) -> bool:
            below_float64 = any(dtype_name(inputs[i]) != "float64" for i in positions)
            return below_float64 and self._is_dtype_error(error)

        return retry_in_own_dtype(
            lambda: TensorflowFunction(fn, inputs, kwargs, positions),
            lambda error: TensorflowFunction(fn, inputs, kwargs, positions, clash=error),
            clash,
        )

    def _is_dtype_error(self, error: BaseException) -> bool:
        """Whether a failure in float64 looks like a dtype clash (so the user's dtype may work)."""
        errors = (TypeError, ValueError, self._tf.errors.InvalidArgumentError)
        text = str(error).lower()
        return isinstance(error, errors) and any(
            word in text for word in ("float", "double", "dtype", "input_signature")
        )
