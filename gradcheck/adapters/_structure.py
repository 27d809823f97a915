"""Nested outputs (arrays, tuples, lists, dicts) flattened to named leaves and back.

Every adapter uses this for outputs; JAX uses its own pytree machinery for inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._errors import UsageError


def flatten(obj: Any, name: str, is_leaf: Callable[[Any], bool]) -> list[tuple[str, Any]]:
    """Named leaves of a nested tuple/list/dict, depth first, dict keys in insertion order.

    Args:
        obj: the structure.
        name: the name of the whole, e.g. "output"; entries become "output[1]", "output['a']".
        is_leaf: what counts as an array of the framework (Python numbers always do).
    """
    if is_leaf(obj) or isinstance(obj, (int, float, np.number, bool)):
        return [(name, obj)]
    if isinstance(obj, Mapping):
        return [
            item
            for key, value in obj.items()
            for item in flatten(value, f"{name}[{key!r}]", is_leaf)
        ]
    if isinstance(obj, (tuple, list)):
        return [
            item for i, value in enumerate(obj) for item in flatten(value, f"{name}[{i}]", is_leaf)
        ]
    raise UsageError(
        f"{name} is a {type(obj).__name__}: outputs must be arrays, numbers, or tuples, lists "
        "and dicts of them"
    )


def unflatten(template: Any, leaves: list[Any], is_leaf: Callable[[Any], bool]) -> Any:
    """The structure of `template` with its leaves replaced, in `flatten` order."""
    queue = iter(leaves)

    def rebuild(obj: Any) -> Any:
        if is_leaf(obj) or isinstance(obj, (int, float, np.number, bool)):
            return next(queue)
        if isinstance(obj, Mapping):
            return type(obj)((key, rebuild(value)) for key, value in obj.items())  # type: ignore[call-arg]
        return type(obj)(rebuild(value) for value in obj)

    return rebuild(template)
