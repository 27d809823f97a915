"""Keras 3 on any backend: float64 clones of layers and models, their inputs and `wrt`.

What does not depend on the backend lives here once: the float64 clone (every layer rebuilt
from its config with the float64 dtype policy, a `Lambda` keeping the user's very function
object, nested models on float64 inputs, built by one call, then given the user's weights),
the model's inputs as one flat list (`ModelInputs`) and `wrt` for layers. The adapter of the
backend Keras runs on (TensorFlow: `tensorflow/_keras.py`, JAX: `jax/_keras.py`, torch:
`torch/_keras.py`) evaluates the clone with `stateless_call`.

The global dtype policy, floatx and the Python/NumPy RNG states (Keras initialisers draw seeds
from Python's `random`) are switched only while cloning and restored even on errors; the user's
model is never assigned to.

Note: Keras computes float64 as float32 off TensorFlow
    Keras' dtype promotion (`keras.src.backend.common.dtypes.result_type`) maps float64 to
    float32 on every backend but TensorFlow ("to be aligned with JAX's default behavior"), so
    `ops.add(x, bias)` of two float64 arrays is float32 and the clone would compute in float32.
    While the clone runs (at trace time under jit: the only time Keras picks dtypes) that one
    mapping entry is switched off, and restored after, as JAX x64 is scoped: a Keras call in
    another thread at that moment would see float64 kept too.
"""

from __future__ import annotations

import contextlib
import importlib
import random
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from .._errors import UsageError
from ._common import Wrt, first_line, select_positions

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
    if _is_graph_model(layer):
        return _clone_graph(layer)
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


def _clone_graph(model: Any) -> Any:
    """A Sequential or functional model cloned layer by layer, nested models too, on new
    float64 inputs: its Input layers would keep their own dtype and cast to it."""
    keras = _keras()
    structure = model.inputs[0] if isinstance(model, keras.Sequential) else model.input
    fresh = keras.tree.map_structure(
        lambda t: keras.Input(
            batch_shape=t.shape,
            name=t.name,
            dtype="float64" if "float" in str(t.dtype) else t.dtype,
        ),
        structure,
    )
    return keras.models.clone_model(model, clone_function=_clone_layer, input_tensors=fresh)


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
            mine.assign(keras.ops.convert_to_numpy(theirs).astype(mine.dtype))
    return clone


class ModelInputs(NamedTuple):
    """The model's inputs as one flat list, and how to pack them into its call's arguments."""

    names: list[str]  # "input[1]" for positional inputs, "input[0][1]" inside a list or dict
    leaves: list[Any]  # the user's arrays, in that order
    pack: Callable[[Sequence[Any]], tuple[Any, ...]]  # leaves -> positional arguments


def model_inputs(layer: Any, inputs: Sequence[Any]) -> ModelInputs:
    """The flat inputs of `layer(*inputs)`: a single list/tuple/dict argument is opened, and
    several positional arrays given to a multi-input functional model are packed into the
    structure it was built with (Keras itself expects one structured argument)."""
    keras = _keras()
    if len(inputs) == 1 and isinstance(inputs[0], (list, tuple, dict)):
        structure = inputs[0]
        pairs = keras.tree.flatten_with_path(structure)
        names = ["input[0]" + "".join(f"[{key!r}]" for key in path) for path, _ in pairs]
        return ModelInputs(
            names,
            [leaf for _, leaf in pairs],
            lambda leaves: (keras.tree.pack_sequence_as(structure, list(leaves)),),
        )
    names = [f"input[{i}]" for i in range(len(inputs))]
    if len(inputs) > 1 and _is_graph_model(layer) and not isinstance(layer, keras.Sequential):
        built = layer._inputs_struct
        if len(keras.tree.flatten(built)) == len(inputs):
            return ModelInputs(
                names,
                list(inputs),
                lambda leaves: (keras.tree.pack_sequence_as(built, list(leaves)),),
            )
    return ModelInputs(names, list(inputs), tuple)


def parse_wrt(
    wrt: Wrt, inputs: Sequence[Any], is_float: Callable[[Any], bool], describe: Callable[[Any], str]
) -> tuple[tuple[int, ...], bool]:
    """(positions of checked inputs, whether the trainable weights are checked), for a layer.

    Args:
        wrt: None or "all", "inputs", "params", or input indices (into `ModelInputs.leaves`).
        inputs: the model's flat inputs.
        is_float, describe: the backend's float test and description, for `select_positions`.
    """
    floats, kinds = [is_float(a) for a in inputs], [describe(a) for a in inputs]
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


def clone_notes(layer: Any, clone: Any, wrt: Wrt) -> list[str]:
    """What a report of `layer` checked through its float64 `clone` says on every backend:
    the default `wrt`, fresh weights of a layer that was never built, and weights a layer
    keeps below float64 (so the numbers are only as precise as those)."""
    notes = default_wrt_note(wrt)
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
    return notes


def default_wrt_note(wrt: Wrt) -> list[str]:
    """The note of a check whose `wrt` was left to the default for a Keras layer."""
    if wrt is not None:
        return []
    return [
        "wrt defaults to 'all' for a Keras layer: its float inputs and trainable weights "
        "are checked"
    ]


def nothing_to_check(layer: Any) -> UsageError:
    """The error for a layer checked w.r.t. nothing: no float input chosen, no weights."""
    return UsageError(
        f"{type(layer).__name__} has nothing to differentiate here: no floating-point "
        "inputs are checked and it has no trainable weights"
    )


def uncloned_note(layer: Any, error: BaseException) -> str:
    """The note of a layer checked in its own dtype because its float64 clone failed."""
    return (
        f"{type(layer).__name__} could not be copied to float64 ({first_line(error, 3)}): it is "
        "checked in its own dtype, through stateless_call (the model is not modified)"
    )


def autocast(layer: Any, tensor: Any) -> Any:
    """A float input in the dtype `layer` casts its inputs to when called.

    `stateless_call` skips Keras' input autocasting, so a float32 layer given float64 input
    would otherwise clash (a float32 kernel in a float64 conv).
    """
    keras = _keras()
    target = getattr(layer, "input_dtype", None)
    floating = "float" in str(getattr(tensor, "dtype", ""))
    if not floating or not getattr(layer, "autocast", True) or not target:
        return tensor
    return keras.ops.cast(tensor, target)


def is_keras_layer(obj: object, backend: str) -> bool:
    """Whether obj is a Keras 3 layer or model while Keras runs on `backend`."""
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Layer) and keras.backend.backend() == backend


def seed_paths(model: Any) -> list[tuple[int, str]]:
    """(index in non_trainable_variables, path) of every seed-generator state of model."""
    return [
        (k, v.path)
        for k, v in enumerate(model.non_trainable_variables)
        if v.path.endswith("seed_generator_state")
    ]


def random_note(layer: Any, sources: Sequence[str]) -> str:
    """What a check of a model that draws random numbers checked.

    Args:
        layer: the user's layer or model.
        sources: what it draws from: seed-state paths (see `advanced_seeds`), or a backend's
            global generator.
    """
    return (
        f"{type(layer).__name__} draws random numbers (from {', '.join(sources)}, which "
        "advances at every call): the check holds that state fixed, so every evaluation sees "
        "the same draw (e.g. one fixed dropout mask) and the derivative of that one draw is "
        "what was checked; the dtype audit is skipped, since the user's dtype draws a "
        "different mask"
    )


def advanced_seeds(model: Any, frozen: Sequence[Any], after: Sequence[Any]) -> list[str]:
    """The seed states that one `stateless_call` (frozen -> after) advanced.

    `stateless_call` returns the advanced state and the check discards it, so every
    evaluation of the check sees the same draw: one fixed mask, which the notes must say.
    """
    to_numpy = _keras().ops.convert_to_numpy
    return [
        path
        for k, path in seed_paths(model)
        if not np.array_equal(to_numpy(after[k]), to_numpy(frozen[k]))
    ]


@contextlib.contextmanager
def float64_kept() -> Iterator[None]:
    """Keras dtype promotion that keeps float64 (see "Note: Keras computes float64 as
    float32 off TensorFlow"); restored on exit, even on errors."""
    try:
        table = importlib.import_module("keras.src.backend.common.dtypes").BIT64_TO_BIT32_DTYPE
    except (ImportError, AttributeError):  # another Keras: nothing to switch
        yield
        return
    saved = table.pop("float64", None)
    try:
        yield
    finally:
        if saved is not None:
            table["float64"] = saved
