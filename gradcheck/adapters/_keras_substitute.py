"""Float64 stand-ins for Keras models that a closure calls (issue #10.5), without touching them.

A closure over float32 models — `lambda x: model_1(model_0(x))`, or a hand-composed VJP built
with `GradientTape.jacobian` across split models — is opaque to the adapter: nothing in it is
promoted, so the check sees float32 noise, and the step ladder grows past relu and max-pool
kinks. Inside `float64_models(model_0, model_1)`, calling one of those models runs its float64
clone instead (`adapters/_keras.float64_clone`: the same weights, built at the first call), so
the closure computes in float64 end to end:

    with float64_models(model_0, model_1):
        report = gc.check(lambda x: model_1(model_0(x)), x)

How: `model(x)` looks `__call__` up on the type, so for the duration of the block each listed
model's `__class__` is a subclass of its own class whose `__call__` forwards to the clone, and
is set back on exit (even on errors). Weights, dtype policy, attributes and variables are never
assigned to. Only `__call__` is redirected (not `model.call`, `predict` or a sublayer called
on its own), and the redirection is process-wide while the block runs: a call from another
thread during it gets the float64 clone too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ._keras import float64_clone

# id(model) -> its stand-in, while a `float64_models` block is active
_ACTIVE: dict[int, _StandIn] = {}
_SUBCLASSES: dict[type, type] = {}


class _StandIn:
    """One model's float64 clone, built at the first call (the call's inputs build it)."""

    def __init__(self, model: Any, own_class: type) -> None:
        self.model, self.own_class = model, own_class
        self.clone: Any = None

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.clone is None:
            # the user's own class while cloning: clone_model copies type(model)
            object.__setattr__(self.model, "__class__", self.own_class)
            try:
                self.clone = float64_clone(self.model, args, kwargs)
            finally:
                object.__setattr__(self.model, "__class__", _subclass(self.own_class))
        return self.clone(*args, **kwargs)


def _forwarding_call(self: Any, *args: Any, **kwargs: Any) -> Any:
    return _ACTIVE[id(self)](args, kwargs)


def _subclass(own: type) -> type:
    """`own` with `__call__` forwarded to the active stand-in (one subclass per class)."""
    if own not in _SUBCLASSES:
        _SUBCLASSES[own] = type(
            own.__name__, (own,), {"__call__": _forwarding_call, "__module__": own.__module__}
        )
    return _SUBCLASSES[own]


def substitution_note() -> str | None:
    """The note of a check run inside a `float64_models` block, else None."""
    if not _ACTIVE:
        return None
    names = ", ".join(sorted(stand_in.model.name for stand_in in _ACTIVE.values()))
    return (
        f"calls of the Keras models {names} ran their float64 clones (float64_models): the "
        "check is of the float64 computation; the dtype audit runs those clones too"
    )


@contextlib.contextmanager
def float64_models(*models: Any) -> Iterator[None]:
    """While the block runs, calling one of `models` runs its float64 clone instead.

    Args:
        models: built Keras layers or models (the clone takes their weights).

    Example:
        >>> with float64_models(encoder, head):  # doctest: +SKIP
        ...     report = gc.check(lambda x: head(encoder(x)), x)
    """
    swapped: list[tuple[Any, type]] = []
    try:
        for model in models:
            if id(model) in _ACTIVE:  # listed twice, or nested blocks: the outer one serves
                continue
            own = type(model)
            _ACTIVE[id(model)] = _StandIn(model, own)
            object.__setattr__(model, "__class__", _subclass(own))
            swapped.append((model, own))
        yield
    finally:
        for model, own in swapped:
            object.__setattr__(model, "__class__", own)
            del _ACTIVE[id(model)]
