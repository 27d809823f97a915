"""@case: declare check cases next to the code, for `python -m gradcheck` (and the CLI) to run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
ATTRIBUTE = "__gradcheck_cases__"


@dataclass(frozen=True)
class Case:
    """One declared check: the inputs and the options for `check`."""

    name: str
    inputs: tuple[Any, ...]
    options: dict[str, Any] = field(default_factory=dict)


def case(*inputs: Any, name: str | None = None, **options: Any) -> Callable[[F], F]:
    """Declare that fn should be checked at `inputs` with `options` (those of `check`).

    Stack it for several points. The function itself is returned unchanged apart from the
    declared cases, which an audit collects.

    Example:
        >>> import numpy as np
        >>> @case(np.array([0.5, 1.0]), grad=lambda x: np.cos(x))
        ... def total_sin(x):
        ...     return np.sum(np.sin(x))
    """

    def declare(fn: F) -> F:
        label = name or str(getattr(fn, "__qualname__", repr(fn)))
        existing = getattr(fn, ATTRIBUTE, ())
        setattr(fn, ATTRIBUTE, (*existing, Case(label, inputs, dict(options))))
        return fn

    return declare
