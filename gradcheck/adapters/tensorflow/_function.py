"""A plain TensorFlow function (eager or `tf.function`) of tensors, as a `TensorflowFlat`.

Checked inputs are promoted to float64 copies, and so are the floating inputs that are not
checked (their dtypes must match). A function that cannot run in float64 is bound again in the
user's dtype (`clash`, from `_common.retry_in_own_dtype`), and the notes say so. Entries that
are not finite (a -inf mask) are held constant (`_partial`): the tape watches the finite
entries, and `_arguments` puts the held ones back around them with TF ops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._common import own_dtype_note
from .._keras_substitute import substitution_note
from .._partial import Ops, Placement, place
from ._flat import TensorflowFlat
from ._tensors import describe_tf, is_float_input, is_leaf, tf_module, to_numpy


class TensorflowFunction(TensorflowFlat):
    """fn(*inputs, **kwargs) of TF tensors (or NumPy arrays), as a function of the wrt inputs."""

    def __init__(
        self,
        fn: Callable[..., Any],
        args: Sequence[Any],
        kwargs: dict[str, Any],
        positions: tuple[int, ...],
        *,
        clash: Exception | None = None,
    ) -> None:
        tf = tf_module()
        self._fn, self._args, self._kwargs = fn, tuple(args), kwargs
        arrays = [np.asarray(to_numpy(args[i])) for i in positions]
        self._placement = Placement(
            [
                (f"input[{i}]", a.astype(np.float64), a.dtype.name)
                for i, a in zip(positions, arrays, strict=True)
            ]
        )
        inputs, x0 = self._placement.leaves, self._placement.x0
        self._ops = Ops(
            concat=lambda a, b: tf.concat([a, tf.constant(b, a.dtype)], 0),
            gather=tf.gather,
            reshape=tf.reshape,
            join=tf.complex,
        )
        native = self._native = clash is not None  # in the user's dtypes (see `clash`)
        dtypes = [tf.as_dtype(leaf.dtype) if native else tf.float64 for leaf in inputs]
        notes = [*self._input_notes(positions), *self._placement.notes]
        if clash is not None:
            cause = (
                "it clashes with float32 tensors it holds, or its tf.function signature pins "
                "the dtype"
            )
            notes.append(own_dtype_note(clash, (leaf.dtype for leaf in inputs), cause))
        substituted = substitution_note()
        if substituted:
            notes.append(substituted)
        super().__init__(x0, inputs, dtypes, notes, positions=positions)

    def _input_notes(self, positions: tuple[int, ...]) -> list[str]:
        notes = []
        for i, arg in enumerate(self._args):
            if i in positions:
                if isinstance(arg, (np.ndarray, np.generic)):
                    notes.append(
                        f"input[{i}] ({describe_tf(arg)}) is passed to the function as a "
                        "float64 tf.Tensor"
                    )
            elif is_float_input(arg) and not isinstance(arg, float) and not self._native:
                notes.append(
                    f"input[{i}] ({describe_tf(arg)}) is not differentiated (not in wrt); "
                    "the function gets a float64 copy so that dtypes match"
                )
            elif is_leaf(arg):
                notes.append(
                    f"input[{i}] ({describe_tf(arg)}) is passed through unchanged, "
                    "not differentiated"
                )
        return notes

    def _promote(self, arg: Any) -> Any:
        """A float64 copy of a floating argument that is not checked (it must match dtypes)."""
        if self._native or not is_float_input(arg) or isinstance(arg, float):
            return arg
        if isinstance(arg, (np.ndarray, np.generic)):
            return np.asarray(arg, dtype=np.float64).copy()
        return tf_module().cast(tf_module().convert_to_tensor(arg), tf_module().float64)

    def _arguments(self, xs: Sequence[Any]) -> list[Any]:
        args = [self._promote(a) for a in self._args]
        for position, leaf, tensor in zip(self.positions, self.inputs, xs, strict=True):
            args[position] = place(leaf, tensor, self._ops)
        return args

    def _call(self, xs: Sequence[Any]) -> list[Any]:
        result = self._fn(*self._arguments(xs), **self._kwargs)
        return self._flat(result)

    def native_inputs(self, x: np.ndarray) -> tuple[Any, ...]:
        """All positional arguments, the checked ones rebuilt from x as float64 tensors."""
        return tuple(self._arguments(self._split(x)))

    def native_tangents(self, flat: np.ndarray) -> tuple[Any, ...]:
        """A flat input-sized vector as one float64 tensor per checked input (tangents; zero
        at held entries)."""
        return tuple(
            place(leaf, t, self._ops, tangent=True)
            for leaf, t in zip(self.inputs, super().native_tangents(flat), strict=True)
        )

    def flat_inputs(self, result: Any) -> np.ndarray | None:
        """A per-input derivative of inputs with held entries as the flat vector (their
        finite entries); None when no entry is held."""
        return self._placement.per_input(result, to_numpy, positions=self.positions)

    def native_vjp(self, u: np.ndarray) -> np.ndarray | None:
        """J(x0)^T u with the user's own tensors and dtypes (for the dtype audit)."""
        if self._native or all(leaf.dtype == "float64" for leaf in self.inputs):
            return None
        tf = tf_module()
        xs = [
            tf.constant(to_numpy(self._args[i]))
            if not isinstance(self._args[i], float)
            else tf.constant(self._args[i], tf.float32)
            for i in self.positions
        ]
        args = list(self._args)
        for position, tensor in zip(self.positions, xs, strict=True):
            args[position] = tensor
        with tf.GradientTape() as tape:
            tape.watch(xs)
            outs = self._flat(self._fn(*args, **self._kwargs))
        whole = self._gradient(tape, outs, xs, u)  # of the whole inputs, held entries too
        sizes = [int(np.prod(shape)) for shape in self._placement.shapes]
        return self._placement.flat(np.split(whole, np.cumsum(sizes)[:-1]))
