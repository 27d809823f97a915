"""Keras 3 layers and models on the TensorFlow backend, with respect to inputs and/or weights.

The check runs on a float64 clone: every layer rebuilt from its config with the float64 dtype
policy (a `Lambda` keeps the user's very function object, so closures survive), built by one
call on the float64 inputs, then given the user's weights. The clone is evaluated with
`stateless_call`, which takes the weights as plain tensors: a tape can watch them, nested tapes
give Hessians with respect to weights, and neither the clone nor the user's model is assigned
to. The global dtype policy, floatx and the Python/NumPy RNG states (Keras initialisers draw
seeds from Python's `random`) are switched only while cloning and restored even on errors.

A model that cannot be cloned or run in float64 (a config that does not round-trip, a layer
that clashes with float64) is checked as it is, in its own dtype, through the same
`stateless_call`; the notes say why. Errors of the user's code that are not about float64
re-raise unchanged from that run.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._differentiable import Differentiable, leaves_of
from ..._errors import UsageError
from .._common import (
    Wrt,
    dtype_name,
    first_line,
    reject_complex,
    retry_in_own_dtype,
    select_positions,
    validate_point,
)
from ._flat import TensorflowFlat
from ._tensors import describe_tf, is_float_input, tf_module, to_numpy

FLOAT_POLICIES = ("float16", "bfloat16", "float32", "float64", "mixed_float16", "mixed_bfloat16")


def _keras() -> Any:
    import keras  # deferred on purpose; see the adapters/__init__.py docstring

    return keras


def _is_float_policy(value: Any) -> bool:
    if value is None or isinstance(value, str):
        return value is None or value in FLOAT_POLICIES
    if isinstance(value, dict) and value.get("class_name") == "DTypePolicy":
        return str(value.get("config", {}).get("name")) in FLOAT_POLICIES
    return False


def _float64_config(config: Any) -> Any:
    """A layer config with every floating dtype policy in it set to float64."""
    if isinstance(config, dict):
        return {
            key: "float64" if key == "dtype" and _is_float_policy(value) else _float64_config(value)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [_float64_config(value) for value in config]
    return config


def _clone_layer(layer: Any) -> Any:
    keras = _keras()
    if isinstance(layer, keras.layers.Lambda):
        return keras.layers.Lambda(
            layer.function,
            output_shape=layer._output_shape,
            mask=layer.mask,
            arguments=layer.arguments,
            name=layer.name,
            dtype="float64",
        )
    return layer.__class__.from_config(_float64_config(layer.get_config()))


def _is_graph_model(model: Any) -> bool:
    from keras.src.models.functional import Functional

    return isinstance(model, (_keras().Sequential, Functional))


def float64_clone(model: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """A float64 copy of model with its weights, built by one call on `args`.

    Raises whatever cloning raises; the caller decides whether to fall back.
    """
    keras = _keras()
    policy, floatx = keras.config.dtype_policy(), keras.config.floatx()
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        keras.config.set_floatx("float64")
        keras.config.set_dtype_policy("float64")
        if _is_graph_model(model):
            # The Input layers keep their own dtype unless new float64 inputs are given.
            structure = model.inputs[0] if isinstance(model, keras.Sequential) else model.input
            fresh = keras.tree.map_structure(
                lambda t: keras.Input(
                    batch_shape=t.shape,
                    name=t.name,
                    dtype="float64" if "float" in str(t.dtype) else t.dtype,
                ),
                structure,
            )
            clone = keras.models.clone_model(
                model, clone_function=_clone_layer, recursive=True, input_tensors=fresh
            )
        else:
            clone = _clone_layer(model)
        clone(*args, **kwargs)  # builds the weights
    finally:
        keras.config.set_dtype_policy(policy)
        keras.config.set_floatx(floatx)
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    if model.weights:
        shapes = [tuple(w.shape) for w in model.weights]
        if shapes != [tuple(w.shape) for w in clone.weights]:
            raise ValueError("the float64 clone's weights do not match the model's")
        for mine, theirs in zip(clone.weights, model.weights, strict=True):
            mine.assign(to_numpy(theirs).astype(mine.dtype))
    return clone


def _parse_wrt(wrt: Wrt, inputs: Sequence[Any]) -> tuple[tuple[int, ...], bool]:
    """(positions of checked inputs, whether the trainable weights are checked)."""
    floats, kinds = [is_float_input(a) for a in inputs], [describe_tf(a) for a in inputs]
    if wrt is None or wrt == "all":
        return tuple(i for i, f in enumerate(floats) if f), True
    if wrt == "inputs":
        return select_positions(None, floats, kinds), False
    if wrt == "params":
        return (), True
    if isinstance(wrt, str):
        raise UsageError(
            f"wrt={wrt!r} is not understood: for a Keras layer or model pass "
            "'inputs', 'params', 'all' or input indices"
        )
    return select_positions(wrt, floats, kinds), False


class KerasModel(TensorflowFlat):
    """A Keras layer or model as a function of its checked inputs and/or trainable weights."""

    def __init__(
        self,
        user: Any,
        model: Any,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        positions: tuple[int, ...],
        params: bool,
        notes: list[str],
        *,
        native: bool,
    ) -> None:
        tf = tf_module()
        self._user, self._model, self._args, self._kwargs = user, model, tuple(args), kwargs
        self._params, self._native = params, native
        self._trainable = [tf.convert_to_tensor(v) for v in model.trainable_variables]
        self._frozen = [tf.convert_to_tensor(v) for v in model.non_trainable_variables]
        named = [(f"input[{i}]", to_numpy(args[i]), dtype_name(args[i])) for i in positions]
        if params:
            source = user if len(user.trainable_variables) == len(self._trainable) else model
            named += [
                (f"params[{v.path!r}]", to_numpy(t), str(v.dtype))
                for v, t in zip(source.trainable_variables, self._trainable, strict=True)
            ]
        if not named:
            raise UsageError(
                f"{type(user).__name__} has nothing to differentiate here: no "
                "floating-point inputs are checked and it has no trainable weights"
            )
        x0 = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for _, a, _ in named])
        inputs = leaves_of(named)
        dtypes = [tf.as_dtype(leaf.dtype) if native else tf.float64 for leaf in inputs]
        super().__init__(x0, inputs, dtypes, notes, positions=positions)

    def _promoted(self) -> list[Any]:
        tf = tf_module()
        return [
            arg
            if self._native or not is_float_input(arg) or isinstance(arg, float)
            else tf.cast(tf.convert_to_tensor(arg), tf.float64)
            for arg in self._args
        ]

    def _call(self, xs: Sequence[Any]) -> list[Any]:
        args = self._promoted()
        count = len(self.positions)
        for position, tensor in zip(self.positions, xs[:count], strict=True):
            args[position] = tensor
        trainable = list(xs[count:]) if self._params else self._trainable
        result, _ = self._model.stateless_call(trainable, self._frozen, *args, **self._kwargs)
        return self._flat(result)

    def native_inputs(self, x: np.ndarray) -> tuple[Any, ...]:
        """The positional inputs, the checked ones rebuilt from x (weights are not arguments)."""
        args = self._promoted()
        for position, tensor in zip(self.positions, self._split(x), strict=False):
            args[position] = tensor
        return tuple(args)

    def native_vjp(self, u: np.ndarray) -> np.ndarray | None:
        """J(x0)^T u of the user's own model, in its own dtypes (for the dtype audit)."""
        if (
            self._native
            or not self._user.built
            or all(leaf.dtype == "float64" for leaf in self.inputs)
        ):
            return None
        tf = tf_module()
        args = list(self._args)
        inputs = [tf.convert_to_tensor(args[i]) for i in self.positions]
        for position, tensor in zip(self.positions, inputs, strict=True):
            args[position] = tensor
        trainable = [tf.convert_to_tensor(v) for v in self._user.trainable_variables]
        frozen = [tf.convert_to_tensor(v) for v in self._user.non_trainable_variables]
        watched = inputs + (trainable if self._params else [])
        with tf.GradientTape() as tape:
            tape.watch(watched)
            result, _ = self._user.stateless_call(trainable, frozen, *args, **self._kwargs)
            outs = self._flat(result)
        return self._gradient(tape, outs, watched, u)


def bind_keras(
    layer: Any, inputs: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
) -> Differentiable:
    """A Keras layer/model (TF backend) as a Differentiable; see the module docstring."""
    tf = tf_module()
    for i, arg in enumerate(inputs):
        reject_complex(f"input[{i}]", arg, describe_tf)
    for i, arg in enumerate(inputs):
        if isinstance(arg, (list, tuple, dict)):
            raise UsageError(
                f"input[{i}] is a {type(arg).__name__}: pass each model input as its "
                "own positional array (nested inputs are not supported yet)"
            )
    positions, params = _parse_wrt(wrt, inputs)
    for i in positions:
        validate_point(f"input[{i}]", np.asarray(to_numpy(inputs[i]), dtype=np.float64))
    notes: list[str] = []
    if wrt is None:
        notes.append(
            "wrt defaults to 'all' for a Keras layer: its float inputs and trainable "
            "weights are checked"
        )
    promoted = [
        tf.cast(tf.convert_to_tensor(a), tf.float64) if is_float_input(a) else a for a in inputs
    ]

    def in_float64() -> Differentiable:
        clone = float64_clone(layer, promoted, kwargs)
        if not layer.built:
            notes.append(
                f"{type(layer).__name__} was not built: its weights are a fresh "
                "initialisation of the float64 copy"
            )
        low = sorted({str(v.dtype) for v in clone.weights} - {"float64"})
        if low:
            notes.append(
                f"the float64 copy still holds {', '.join(low)} weights (a layer fixes "
                "its dtype): the numbers are only as precise as those"
            )
        return KerasModel(layer, clone, inputs, kwargs, positions, params, notes, native=False)

    def in_own_dtype(error: Exception) -> Differentiable:
        notes.append(
            f"{type(layer).__name__} could not be copied to float64 "
            f"({first_line(error, 3)}): it is checked in its own dtype, through "
            "stateless_call (the model is not modified)"
        )
        return KerasModel(layer, layer, inputs, kwargs, positions, params, notes, native=True)

    # Any failure of a built model's copy: the user's own errors re-raise from the native run.
    return retry_in_own_dtype(in_float64, in_own_dtype, lambda error: layer.built)
