"""What TensorFlow objects are: tensors, variables, dtypes; the bottom of this subpackage."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._errors import UsageError
from .._common import describe, dtype_name


def tf_module() -> Any:
    import tensorflow as tf  # deferred on purpose; see the adapters/__init__.py docstring

    return tf


def is_tf_array(obj: object) -> bool:
    """A TF tensor or variable, or a Keras variable (Keras 3 tensors belong to TF here)."""
    tf = tf_module()
    if tf.is_tensor(obj) or isinstance(obj, tf.Variable):
        return True
    keras = sys.modules.get("keras")
    return (
        keras is not None
        and isinstance(obj, keras.Variable)
        and keras.backend.backend() == "tensorflow"
    )


def is_leaf(obj: object) -> bool:
    """An array of the outputs' flat structure: TF tensors and NumPy arrays."""
    return isinstance(obj, (np.ndarray, np.generic)) or is_tf_array(obj)


def to_numpy(obj: Any) -> np.ndarray:
    """A tensor, variable or array as NumPy in its own dtype (a copy for tensors)."""
    if hasattr(obj, "numpy") and not isinstance(obj, np.ndarray):
        return np.asarray(obj.numpy())
    return np.asarray(obj)


def describe_tf(obj: Any) -> str:
    """ "float32 tensor of shape (3, 2)", "float32 NumPy array of shape (3,)", …: for messages."""
    if is_tf_array(obj):
        return describe(obj, "variable" if "Variable" in type(obj).__name__ else "tensor")
    if isinstance(obj, (np.ndarray, np.generic)):
        return describe(obj, "NumPy array")
    return type(obj).__name__


def is_float(obj: Any) -> bool:
    """Whether obj can be differentiated: a real floating tensor/array or a Python float."""
    if isinstance(obj, bool):
        return False
    if isinstance(obj, float):
        return True
    return is_leaf(obj) and dtype_name(obj).startswith(("float", "bfloat"))


def reject_complex(inputs: Sequence[Any]) -> None:
    """Complex inputs have no real gradient to check: say how to split them."""
    for i, arg in enumerate(inputs):
        if is_leaf(arg) and dtype_name(arg).startswith("complex"):
            raise UsageError(
                f"input[{i}] is {describe_tf(arg)}: complex inputs are not supported; "
                "check the real and imaginary parts as separate real inputs"
            )


def float_eps(name: str) -> float:
    """Unit round-off of a float dtype name ("bfloat16" included)."""
    if name == "bfloat16":
        return 2.0**-8
    return float(np.finfo(np.dtype(name)).eps)
