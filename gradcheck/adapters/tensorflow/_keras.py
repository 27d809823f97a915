"""Keras 3 layers and models on the TensorFlow backend, with respect to inputs and/or weights.

The check runs on a float64 clone (`adapters/_keras.float64_clone`), evaluated with
`stateless_call`, which takes the weights as plain tensors: a tape can watch them, nested tapes
give Hessians with respect to weights, and neither the clone nor the user's model is assigned
to.

Inputs: `gc.check(model, a, b)` and `gc.check(model, [a, b])` (or a dict) both work for a
multi-input model: the model's inputs are flattened into one list (`ModelInputs`), named
"input[1]" or "input[0][1]", and packed back into the structure the model is called with.

Randomness: a layer that draws random numbers (Dropout, GaussianNoise, …) keeps its seed in a
seed-generator state variable. `stateless_call` takes that state as an argument and returns
the advanced one, which the check discards: every evaluation sees the same draw, so the check
is of one fixed mask. The notes say so, and the dtype audit is skipped (a float32 model draws a
different mask from the same seed, so the difference would not be round-off).

A model that cannot be cloned or run in float64 (a config that does not round-trip, a layer
that clashes with float64) is checked as it is, in its own dtype, through the same
`stateless_call`; the notes say why. Errors of the user's code that are not about float64
re-raise unchanged from that run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._differentiable import Differentiable, leaves_of
from .._common import (
    Wrt,
    dtype_name,
    reject_complex,
    retry_in_own_dtype,
    validate_point,
)
from .._keras import (
    ModelInputs,
    advanced_seeds,
    autocast,
    clone_notes,
    default_wrt_note,
    float64_clone,
    model_inputs,
    nothing_to_check,
    parse_wrt,
    random_note,
    seed_paths,
    uncloned_note,
)
from ._flat import TensorflowFlat
from ._tensors import describe_tf, is_float_input, tf_module, to_numpy


class KerasModel(TensorflowFlat):
    """A Keras layer or model as a function of its checked inputs and/or trainable weights."""

    def __init__(
        self,
        user: Any,
        model: Any,
        given: ModelInputs,
        kwargs: dict[str, Any],
        positions: tuple[int, ...],
        params: bool,
        notes: list[str],
        *,
        native: bool,
    ) -> None:
        tf = tf_module()
        self._user, self._model, self._kwargs = user, model, kwargs
        self._args, self._pack = tuple(given.leaves), given.pack
        self._params, self._native = params, native
        self._trainable = [tf.convert_to_tensor(v) for v in model.trainable_variables]
        self._frozen = [tf.convert_to_tensor(v) for v in model.non_trainable_variables]
        args = self._args
        named = [(given.names[i], to_numpy(args[i]), dtype_name(args[i])) for i in positions]
        if params:
            source = user if len(user.trainable_variables) == len(self._trainable) else model
            named += [
                (f"params[{v.path!r}]", to_numpy(t), str(v.dtype))
                for v, t in zip(source.trainable_variables, self._trainable, strict=True)
            ]
        if not named:
            raise nothing_to_check(user)
        x0 = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for _, a, _ in named])
        inputs = leaves_of(named)
        dtypes = [tf.as_dtype(leaf.dtype) if native else tf.float64 for leaf in inputs]
        self._random: list[str] = []
        if seed_paths(model):
            _, after = model.stateless_call(
                self._trainable, self._frozen, *self._pack(self._promoted()), **kwargs
            )
            self._random = advanced_seeds(model, self._frozen, after)
        if self._random:
            notes = [*notes, random_note(user, self._random)]
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
        result, _ = self._model.stateless_call(
            trainable, self._frozen, *self._pack(args), **self._kwargs
        )
        return self._flat(result)

    def native_inputs(self, x: np.ndarray) -> tuple[Any, ...]:
        """The call's positional inputs, the checked ones rebuilt from x (weights are not
        arguments)."""
        args = self._promoted()
        for position, tensor in zip(self.positions, self._split(x), strict=False):
            args[position] = tensor
        return self._pack(args)

    def native_vjp(self, u: np.ndarray) -> np.ndarray | None:
        """J(x0)^T u of the user's own model, in its own dtypes (for the dtype audit)."""
        if (
            self._native
            or self._random
            or not self._user.built
            or all(leaf.dtype == "float64" for leaf in self.inputs)
        ):
            return None
        tf = tf_module()
        args = [
            autocast(self._user, tf.convert_to_tensor(a)) if is_float_input(a) else a
            for a in self._args
        ]
        inputs = [args[i] for i in self.positions]
        trainable = [tf.convert_to_tensor(v) for v in self._user.trainable_variables]
        frozen = [tf.convert_to_tensor(v) for v in self._user.non_trainable_variables]
        watched = inputs + (trainable if self._params else [])
        with tf.GradientTape() as tape:
            tape.watch(watched)
            result, _ = self._user.stateless_call(
                trainable, frozen, *self._pack(args), **self._kwargs
            )
            outs = self._flat(result)
        return self._gradient(tape, outs, watched, u)


def bind_keras(
    layer: Any, inputs: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
) -> Differentiable:
    """A Keras layer/model (TF backend) as a Differentiable; see the module docstring."""
    tf = tf_module()
    given = model_inputs(layer, inputs)
    for name, arg in zip(given.names, given.leaves, strict=True):
        reject_complex(name, arg, describe_tf)
    positions, params = parse_wrt(wrt, given.leaves, is_float_input, describe_tf)
    for i in positions:
        validate_point(given.names[i], np.asarray(to_numpy(given.leaves[i]), dtype=np.float64))
    promoted = [
        tf.cast(tf.convert_to_tensor(a), tf.float64) if is_float_input(a) else a
        for a in given.leaves
    ]

    def in_float64() -> Differentiable:
        clone = float64_clone(layer, given.pack(promoted), kwargs)
        notes = clone_notes(layer, clone, wrt)
        return KerasModel(layer, clone, given, kwargs, positions, params, notes, native=False)

    def in_own_dtype(error: Exception) -> Differentiable:
        notes = [*default_wrt_note(wrt), uncloned_note(layer, error)]
        return KerasModel(layer, layer, given, kwargs, positions, params, notes, native=True)

    # Any failure of a built model's copy: the user's own errors re-raise from the native run.
    return retry_in_own_dtype(in_float64, in_own_dtype, lambda error: layer.built)
