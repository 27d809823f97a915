"""Keras 3 layers and models on the torch backend (`KERAS_BACKEND=torch`), through `TorchBinding`.

On torch a Keras layer is a `torch.nn.Module`, but not one `_module` can check: its weights are
Keras variables with a dtype policy, so a deep copy moved to float64 still computes in float32,
and `functional_call` substitutes tensors Keras does not read. As on the other backends, the
check runs on a float64 clone (`adapters/_keras`) evaluated with `stateless_call`, which takes
the weights as plain tensors; `TorchBinding` then drives it as any torch code (autograd, forward
AD, vmap, Hessians with respect to weights). The dtype audit runs the user's own model through
the same `stateless_call`; neither is assigned to. (Keras' float64-to-float32 promotion is
switched off while the clone runs: see "Note: Keras computes float64 as float32 off
TensorFlow" in `adapters/_keras.py`.)

Inputs: `gc.check(model, a, b)` and `gc.check(model, [a, b])` (or a dict) both work for a
multi-input model (`ModelInputs`); NumPy inputs become tensors. Randomness (Dropout,
GaussianNoise) is one fixed draw per check, noted, and the dtype audit is skipped, as on
TensorFlow. A model that cannot be cloned to float64 is checked in its own dtype, with a note.

A closure over float32 Keras models is plain torch code to this adapter; `models=` runs float64
clones of the listed models inside it (`keras_models_in_float64`, with the stand-ins of
`adapters/_keras_substitute`, shared with TensorFlow).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._differentiable import Differentiable
from ..._errors import UsageError
from .._common import Wrt, reject_complex, retry_in_own_dtype
from .._keras import (
    ModelInputs,
    advanced_seeds,
    autocast,
    clone_notes,
    default_wrt_note,
    float64_clone,
    float64_kept,
    is_keras_layer,
    model_inputs,
    nothing_to_check,
    parse_wrt,
    random_note,
    seed_paths,
    uncloned_note,
)
from .._keras_substitute import float64_models
from ._binding import (
    TorchBinding,
    describe_tensor,
    has_low_precision,
    is_float_tensor,
    promote,
    substitute,
)

if TYPE_CHECKING:
    import torch

Call = Callable[[Sequence["torch.Tensor"]], Any]


class _Checked:
    """What one check of a Keras layer differentiates: its chosen inputs (packed back into
    the model's call) and, with `params`, its trainable weights after them."""

    def __init__(self, given: ModelInputs, positions: tuple[int, ...], params: bool) -> None:
        self.given, self.positions, self.params = given, positions, params
        self.global_draws = False  # whether a call drew from torch's global generator

    def call(self, model: Any, start: Sequence[Any], kwargs: dict[str, Any]) -> Call:
        """pieces -> (outputs, advanced non-trainable state) of `model.stateless_call`, the
        checked inputs and weights taken from pieces, the rest from `start` and the model."""
        trainable = [v.value.detach() for v in model.trainable_variables]
        frozen = [v.value.detach() for v in model.non_trainable_variables]
        count = len(self.positions)

        def run(pieces: Sequence[torch.Tensor]) -> Any:
            import torch

            weights = list(pieces[count:]) if self.params else trainable
            # Unseeded Dropout on torch draws from the global generator, not from its seed
            # state: putting that back after every call gives every evaluation the same draw,
            # as the seed state held fixed does (see `random_note`).
            state = torch.get_rng_state()
            try:
                return model.stateless_call(weights, frozen, *self.args_of(pieces, start), **kwargs)
            finally:
                self.global_draws |= not torch.equal(state, torch.get_rng_state())
                torch.set_rng_state(state)

        return run

    def args_of(self, pieces: Sequence[torch.Tensor], start: Sequence[Any]) -> tuple[Any, ...]:
        """The model's positional arguments with the checked inputs replaced by pieces."""
        count = len(self.positions)
        return self.given.pack(substitute(start, self.positions, pieces[:count]))

    def named(
        self, layer: Any, model: Any, args: Sequence[Any]
    ) -> tuple[list[str], list[torch.Tensor]]:
        """Report names and the user's tensors of what is checked: the chosen inputs, then
        the trainable weights (the user's where the layer has them, else the clone's)."""
        names = [self.given.names[i] for i in self.positions]
        originals = [args[i] for i in self.positions]
        if self.params:
            mine = len(layer.trainable_variables) == len(model.trainable_variables)
            source = layer if mine else model
            names += [f"params[{v.path!r}]" for v in source.trainable_variables]
            originals += [v.value for v in source.trainable_variables]
        if not names:
            raise nothing_to_check(layer)
        return names, originals


def bind_keras(
    layer: Any, inputs: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
) -> Differentiable:
    """A Keras layer/model (torch backend) as a Differentiable; see the module docstring."""
    import torch

    given = model_inputs(layer, inputs)
    args = [torch.from_numpy(np.array(a)) if isinstance(a, np.ndarray) else a for a in given.leaves]
    for name, arg in zip(given.names, args, strict=True):
        reject_complex(name, arg, describe_tensor)
    checked = _Checked(given, *parse_wrt(wrt, args, is_float_tensor, describe_tensor))
    promoted = [promote(a) for a in args]

    def in_float64() -> Differentiable:
        # fork_rng: the building call of a model with unseeded Dropout draws from torch's
        # global generator (see `_Checked.call`).
        with float64_kept(), torch.random.fork_rng(devices=[]):
            clone = float64_clone(layer, given.pack(promoted), kwargs)
        notes = clone_notes(layer, clone, wrt)
        names, originals = checked.named(layer, clone, args)
        run = checked.call(clone, promoted, kwargs)

        def call(pieces: Sequence[torch.Tensor]) -> Any:
            with float64_kept():
                return run(pieces)

        drawn = _drawn(clone, call, [promote(t) for t in originals], checked)
        native_call = None
        if drawn:
            notes.append(random_note(layer, drawn))
        elif layer.built and has_low_precision(originals):
            own = checked.call(layer, [autocast(layer, a) for a in args], kwargs)
            count = len(checked.positions)

            def native_call(pieces: Sequence[torch.Tensor]) -> Any:
                inputs = [autocast(layer, p) for p in pieces[:count]]
                return own([*inputs, *pieces[count:]])[0]

        return TorchBinding(
            names,
            originals,
            lambda pieces: call(pieces)[0],
            native_call,
            lambda pieces: checked.args_of(pieces, promoted),
            notes,
        ).differentiable()

    def in_own_dtype(error: Exception) -> Differentiable:
        names, originals = checked.named(layer, layer, args)
        run = checked.call(layer, args, kwargs)

        def cast_call(pieces: Sequence[torch.Tensor]) -> Any:
            # A differentiable cast: autograd carries the float64 point into the user's dtype.
            return run([p.to(t.dtype) for p, t in zip(pieces, originals, strict=True)])[0]

        notes = [*default_wrt_note(wrt), uncloned_note(layer, error)]
        drawn = _drawn(layer, run, [t.detach() for t in originals], checked)
        if drawn:
            notes.append(random_note(layer, drawn))
        return TorchBinding(
            names, originals, cast_call, None, lambda pieces: checked.args_of(pieces, args), notes
        ).differentiable()

    # Any failure of a built model's copy: the user's own errors re-raise from the native run.
    return retry_in_own_dtype(in_float64, in_own_dtype, lambda error: layer.built)


def _drawn(model: Any, call: Call, pieces: Sequence[torch.Tensor], checked: _Checked) -> list[str]:
    """What one call of model at pieces draws random numbers from: the seed states it
    advances, and torch's global generator."""
    frozen = [v.value for v in model.non_trainable_variables]
    _, after = call(pieces)
    seeds = advanced_seeds(model, frozen, after) if seed_paths(model) else []
    return [*seeds, *(["torch's global generator"] if checked.global_draws else [])]


@contextlib.contextmanager
def keras_models_in_float64(models: Sequence[Any]) -> Iterator[None]:
    """While the block runs, calling one of `models` (built Keras layers or models on the
    torch backend) runs its float64 clone, as `float64_models` does on TensorFlow; Keras'
    float64 promotion is kept meanwhile and the torch generator is put back after.

    Raises:
        UsageError: a model that is not a Keras layer on the torch backend.
    """
    import torch

    strangers = [type(m).__name__ for m in models if not is_keras_layer(m, "torch")]
    if strangers:
        raise UsageError(
            f"models= takes Keras layers and models (Keras on torch); got {', '.join(strangers)}"
        )
    with float64_kept(), torch.random.fork_rng(devices=[]), float64_models(*models):
        yield
