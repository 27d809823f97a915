"""What TensorFlow objects are: tensors, variables, dtypes; the bottom of this subpackage."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .._common import describe, is_float


def tf_module() -> Any:
    import tensorflow as tf  # deferred on purpose; see the adapters/__init__.py docstring

    return tf


def is_tf_array(obj: object) -> bool:
    """A TF tensor or variable, or a Keras variable (Keras 3 tensors belong to TF here)."""
    tf = tf_module()
    return tf.is_tensor(obj) or isinstance(obj, tf.Variable) or is_keras(obj, "Variable")


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


def is_float_input(obj: Any) -> bool:
    """A real floating tensor, variable or NumPy array, or a Python float."""
    return is_float(obj, is_leaf)


def is_keras(obj: object, kind: str) -> bool:
    """Whether obj is a `keras.<kind>` ("Layer", "Variable") of Keras on the TF backend."""
    keras = sys.modules.get("keras")
    return (
        keras is not None
        and isinstance(obj, getattr(keras, kind))
        and keras.backend.backend() == "tensorflow"
    )


def float_eps(name: str) -> float:
    """Unit round-off of a float dtype name ("bfloat16" included)."""
    if name == "bfloat16":
        return 2.0**-8
    return float(np.finfo(np.dtype(name)).eps)
