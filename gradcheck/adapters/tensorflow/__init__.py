"""TensorFlow (and Keras 3 on the TensorFlow backend): GradientTape, ForwardAccumulator, pfor.

Everything differentiable here is a `TensorflowFlat` (`_flat`): a TF-level function
`_call(xs)` from one tensor per input leaf to one tensor per output leaf. Reverse mode is a
`GradientTape`, forward mode a `tf.autodiff.ForwardAccumulator`, batched values
`tf.vectorized_map`, and the gradient map x -> J(x)^T u is again a `TensorflowFlat` whose
`_call` runs a tape, so nested tapes give Hessian-vector products and every higher order.
Plain functions (eager or `tf.function`) are `_function.TensorflowFunction`; Keras layers and
models are `_keras.KerasModel`.

Inputs are promoted to float64 copies (entries that are not finite held constant, with a
note: `_partial`); a function that cannot run in float64 (it mixes its
input with float32 tensors it captured, or a `tf.function` pins float32 in its signature) is
evaluated in the user's dtype instead (`_common.retry_in_own_dtype`), and the notes say so. No
TF global state is touched.

A closure over float32 Keras models is opaque to promotion; `float64_models(model_0, …)`
(`adapters/_keras_substitute`) runs float64 clones of the listed models wherever the closure
calls them, for the duration of a block, without assigning to the models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from ..._differentiable import Differentiable
from .._common import Adapter, Wrt, dtype_name, float_positions, retry_in_own_dtype
from .._keras_substitute import float64_models
from ._flat import TensorflowFlat
from ._function import TensorflowFunction
from ._keras import bind_keras
from ._tensors import describe_tf, is_keras, is_leaf, is_tf_array, tf_module

__all__ = ["TensorflowAdapter", "TensorflowFlat", "float64_models"]


class TensorflowAdapter(Adapter):
    """TF tensors, variables and tf.functions; Keras 3 layers and models on the TF backend."""

    framework: ClassVar[str] = "tensorflow"

    def __init__(self) -> None:
        self._tf = tf_module()

    def handles(self, obj: object) -> bool:
        if is_tf_array(obj) or isinstance(obj, self._tf.types.experimental.PolymorphicFunction):
            return True
        return is_keras(obj, "Layer")

    def bind(
        self, fn: Callable[..., Any], inputs: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
    ) -> Differentiable:
        if is_keras(fn, "Layer"):
            return bind_keras(fn, inputs, kwargs, wrt)
        positions = float_positions(inputs, wrt, is_leaf, describe_tf)

        def clash(error: Exception) -> bool:
            below_float64 = any(dtype_name(inputs[i]) != "float64" for i in positions)
            return below_float64 and self._is_dtype_error(error)

        return retry_in_own_dtype(
            lambda: TensorflowFunction(fn, inputs, kwargs, positions),
            lambda error: TensorflowFunction(fn, inputs, kwargs, positions, clash=error),
            clash,
        )

    def substitute(self, models: Sequence[Any]) -> AbstractContextManager[None]:
        """Keras models a closure calls run as float64 clones while the check runs."""
        return float64_models(*models)

    def _is_dtype_error(self, error: BaseException) -> bool:
        """Whether a failure in float64 looks like a dtype clash (so the user's dtype may work)."""
        errors = (TypeError, ValueError, self._tf.errors.InvalidArgumentError)
        text = str(error).lower()
        return isinstance(error, errors) and any(
            word in text for word in ("float", "double", "dtype", "input_signature")
        )
