"""@case: declare check cases next to the code, for `gradcheck audit` to find and run.

A declaration stores a `Case` on the function (the attribute `ATTRIBUTE`), with the file and
line of the decorator so that reports and CI annotations point at it. Inputs are given
directly, or by a factory that the audit calls only when it runs the case: building tensors
or models at import time costs every audit of the file, even one that deselects the case.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ._errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])
ATTRIBUTE = "__gradcheck_cases__"


@dataclass(frozen=True)
class Case:
    """One declared check: the inputs (or their factory), the options for `check`, the place.

    Attributes:
        name: the case's label (the function's qualified name unless given).
        inputs: the positional inputs; empty when `factory` makes them.
        options: keyword options for `check` (``grad=``, ``order=``, ``wrt=`` ...).
        factory: called with no arguments to make the inputs: a tuple of inputs, or one input.
        file, line: where the declaration is, for reports; None when unknown.
    """

    name: str
    inputs: tuple[Any, ...]
    options: dict[str, Any] = field(default_factory=dict)
    factory: Callable[[], Any] | None = None
    file: str | None = None
    line: int | None = None

    def make_inputs(self) -> tuple[Any, ...]:
        """The inputs to check at: the given ones, or the factory's (a non-tuple is one input)."""
        if self.factory is None:
            return self.inputs
        made = self.factory()
        return made if isinstance(made, tuple) else (made,)


def declared_cases(obj: object) -> tuple[Case, ...]:
    """The cases declared on `obj` with `case`, in declaration order (top decorator last)."""
    found = getattr(obj, ATTRIBUTE, ())
    return tuple(c for c in found if isinstance(c, Case)) if isinstance(found, tuple) else ()


def case(
    *inputs: Any, name: str | None = None, factory: Callable[[], Any] | None = None, **options: Any
) -> Callable[[F], F]:
    """Declare that fn should be checked at `inputs` (or `factory()`) with `options` of `check`.

    Stack it for several points. The function itself is returned unchanged apart from the
    declared cases, which `gradcheck audit` collects and runs (each in isolation).

    Args:
        *inputs: the positional inputs of the check.
        name: a label for reports; default: the function's qualified name.
        factory: instead of `inputs`, a callable that makes them when the case runs: a tuple
            of inputs, or a single input.
        **options: passed to `check` (``grad=``, ``order=``, ``wrt=``, ``surrogate=`` ...).

    Raises:
        UsageError: both `inputs` and `factory`, or neither, are given.

    Example:
        >>> import numpy as np
        >>> @case(np.array([0.5, 1.0]), grad=lambda x: np.cos(x))
        ... def total_sin(x):
        ...     return np.sum(np.sin(x))
    """
    if (factory is None) == (not inputs):
        raise UsageError("gradcheck.case takes the inputs, or factory= to make them: not both")
    caller = sys._getframe(1)  # the decorator's line: where reports and annotations point

    def declare(fn: F) -> F:
        label = name or str(getattr(fn, "__qualname__", repr(fn)))
        declared = Case(
            label, inputs, dict(options), factory, caller.f_code.co_filename, caller.f_lineno
        )
        setattr(fn, ATTRIBUTE, (*declared_cases(fn), declared))
        return fn

    return declare
