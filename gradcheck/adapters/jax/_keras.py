"""Keras 3 layers and models on the JAX backend (`KERAS_BACKEND=jax`), through `JaxFlat`.

Keras 3's point is that one model runs on several backends; on JAX its tensors are JAX arrays,
so the JAX adapter checks it. The check runs on a float64 clone (`adapters/_keras`), created
and evaluated inside `jax.enable_x64(True)` (JAX truncates float64 variables without it). The
flat function maps x (the checked inputs, then the trainable weights) to the clone's
`stateless_call`, a pure JAX function: `JaxFlat` then jits, vmaps and differentiates it like
any other, Hessians with respect to weights included. The user's model is never assigned to.
(Keras' float64-to-float32 promotion is switched off meanwhile: see "Note: Keras computes float64
as float32 off TensorFlow" in `adapters/_keras.py`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._differentiable import Differentiable, leaves_of
from ..._errors import UsageError
from .._common import Wrt, describe, dtype_name, is_float, part, reject_complex, validate_point
from .._keras import (
    advanced_seeds,
    clone_notes,
    float64_clone,
    float64_kept,
    model_inputs,
    nothing_to_check,
    parse_wrt,
    random_note,
    seed_paths,
)
from ._flat import JaxFlat, Programs


def _is_array(obj: object) -> bool:
    return hasattr(obj, "dtype") and hasattr(obj, "shape")


def _is_float_input(obj: object) -> bool:
    return is_float(obj, _is_array)


def bind_keras(
    jax: Any, layer: Any, inputs: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
) -> Differentiable:
    """A Keras layer/model (JAX backend) as a `JaxFlat` of its checked inputs and weights."""
    jnp = jax.numpy
    given = model_inputs(layer, inputs)
    for name, arg in zip(given.names, given.leaves, strict=True):
        reject_complex(name, arg)
    positions, params = parse_wrt(wrt, given.leaves, _is_float_input, describe)
    for i in positions:
        validate_point(given.names[i], np.asarray(given.leaves[i], dtype=np.float64))
    with jax.enable_x64(True):
        promoted = [
            jnp.asarray(np.asarray(a, dtype=np.float64)) if _is_float_input(a) else a
            for a in given.leaves
        ]
        with float64_kept():
            clone = float64_clone(layer, given.pack(promoted), kwargs)
        trainable = [v.value for v in clone.trainable_variables]
        frozen = [v.value for v in clone.non_trainable_variables]
    notes = clone_notes(layer, clone, wrt)
    named = [
        (given.names[i], np.shape(given.leaves[i]), dtype_name(given.leaves[i])) for i in positions
    ]
    if params:
        source = layer if len(layer.trainable_variables) == len(trainable) else clone
        named += [
            (f"params[{v.path!r}]", tuple(t.shape), str(v.dtype))
            for v, t in zip(source.trainable_variables, trainable, strict=True)
        ]
    if not named:
        raise nothing_to_check(layer)
    leaves = leaves_of(named)
    x0 = np.concatenate(
        [np.asarray(promoted[i]).ravel() for i in positions]
        + ([np.asarray(t).ravel() for t in trainable] if params else [])
    )
    count = len(positions)

    def call(x: Any) -> tuple[Any, Any]:
        args = list(promoted)
        for i, leaf in zip(positions, leaves[:count], strict=True):
            args[i] = part(x, leaf)
        weights = [part(x, leaf) for leaf in leaves[count:]] if params else trainable
        with float64_kept():
            result, after = clone.stateless_call(weights, frozen, *given.pack(args), **kwargs)
        return result, after

    with jax.enable_x64(True):
        result, after = call(jnp.asarray(x0))
    if seed_paths(clone):
        drawn = advanced_seeds(clone, frozen, after)
        if drawn:
            notes.append(random_note(layer, drawn))
    out_pairs = jax.tree_util.tree_flatten_with_path(result)[0]
    outputs = leaves_of(
        [
            (f"output{jax.tree_util.keystr(path)}", tuple(v.shape), str(v.dtype))
            for path, v in out_pairs
        ]
    )
    for leaf in outputs:
        if not np.issubdtype(np.dtype(leaf.dtype), np.floating):
            raise UsageError(f"{leaf.name} is {leaf.dtype}: a differentiable output must be float")
    eps = max(float(np.finfo(np.dtype(leaf.dtype)).eps) for leaf in outputs)

    def flat_fn(_: Any, x: Any) -> Any:
        out = jax.tree_util.tree_leaves(call(x)[0])
        return jnp.concatenate([jnp.ravel(v).astype(jnp.float64) for v in out])

    # Not cached across checks: the programs close over this check's clone.
    return JaxFlat(
        Programs(flat_fn), x0, leaves, outputs, eps=eps, notes=tuple(notes), positions=positions
    )
