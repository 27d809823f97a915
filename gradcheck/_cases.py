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
        name: the label given, or None: the audit then names the case after the function's
            qualified name, or the module variable holding the object (a model instance).
        inputs: the positional inputs; empty when `factory` makes them.
        options: keyword options for `check` (``grad=``, ``order=``, ``wrt=`` ...).
        factory: called with no arguments to make the inputs: a tuple of inputs, or one input.
        file, line: where the declaration is, for reports; None when unknown.
        skip: a reason not to check the object at all; the audit lists it as skipped.
    """

    name: str | None
    inputs: tuple[Any, ...]
    options: dict[str, Any] = field(default_factory=dict)
    factory: Callable[[], Any] | None = None
    file: str | None = None
    line: int | None = None
    skip: str | None = None

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
    *inputs: Any,
    name: str | None = None,
    factory: Callable[[], Any] | None = None,
    skip: str | None = None,
    **options: Any,
) -> Callable[[F], F]:
    """Declare that fn should be checked at `inputs` (or `factory()`) with `options` of `check`.

    Stack it for several points. The function itself is returned unchanged apart from the
    declared cases, which `gradcheck audit` collects and runs (each in isolation). It also
    declares cases on an object that is not a function, such as a model instance:
    ``gradcheck.case(x, wrt="all")(model)``.

    Args:
        *inputs: the positional inputs of the check.
        name: a label for reports; default: the function's qualified name (or, for an object
            such as a model, the name of the module variable holding it).
        factory: instead of `inputs`, a callable that makes them when the case runs: a tuple
            of inputs, or a single input.
        skip: instead of inputs, the reason the object must not be checked on its own (an
            override checked through another case, say); the audit, which would otherwise
            discover it, lists it as skipped with this reason.
        **options: passed to `check` (``grad=``, ``order=``, ``wrt=``, ``surrogate=`` ...).

    Raises:
        UsageError: not exactly one of `inputs`, `factory` and `skip` is given.

    Example:
        >>> import numpy as np
        >>> @case(np.array([0.5, 1.0]), grad=lambda x: np.cos(x))
        ... def total_sin(x):
        ...     return np.sum(np.sin(x))
        >>> @case(skip="a gradient override: checked through a case with its surrogate")
        ... def guided_relu(x):
        ...     return np.maximum(x, 0)
    """
    if sum((bool(inputs), factory is not None, skip is not None)) != 1:
        raise UsageError("gradcheck.case takes the inputs, factory= or skip=: exactly one")
    caller = sys._getframe(1)  # the decorator's line: where reports and annotations point

    def declare(fn: F) -> F:
        where = caller.f_code.co_filename, caller.f_lineno
        declared = Case(name, inputs, dict(options), factory, *where, skip)
        setattr(fn, ATTRIBUTE, (*declared_cases(fn), declared))
        return fn

    return declare
