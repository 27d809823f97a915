"""The options of one check, validated once into a frozen value.

`check()` takes its options as keyword arguments (the public contract in DESIGN.md); they are
checked here, with one clear `UsageError` per mistake, so that nothing deeper has to wonder
whether an order is an integer or a kind of check exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ._errors import UsageError

MAX_ORDER = 8
MODES = ("full", "fast")
CHECK_KINDS = ("vjp", "jvp", "adjoint", "undefined_grad", "batched_grad", "dtype")
"""The kinds `checks=` can choose: reverse mode against differences, forward mode against
differences, reverse against forward mode (no differences), a backward given undefined output
gradients (torch), the framework's batched backward against one backward per row, and the
informative audit of the user's own-dtype gradient. Higher orders and surrogates are checked
by the same routes. A kind the function does not support is skipped."""
DEFAULT_CHECKS = tuple(k for k in CHECK_KINDS if k != "batched_grad")
"""What runs unless `checks=` says: every kind but batched_grad, which (as in torch's checker)
is asked for explicitly — it tests a batching rule, and costs a vmapped backward per check."""


@dataclass(frozen=True, slots=True)
class Options:
    """How to check: validated, with the defaults filled in."""

    order: int = 1
    mode: str = "full"
    rtol: float = 0.0
    atol: float = 0.0
    seed: int = 0
    checks: tuple[str, ...] = DEFAULT_CHECKS
    nondet_tol: float = 0.0
    step: float | None = None
    max_evaluations: int | None = None
    explicit: bool = False  # checks= was given: a kind it names must run, or it fails


def _non_negative(name: str, value: object) -> float:
    if value is None:
        return 0.0
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not np.isfinite(value)
        or value < 0
    ):
        raise UsageError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def _kinds(checks: str | Iterable[str] | None) -> tuple[str, ...]:
    if checks is None:
        return DEFAULT_CHECKS
    chosen = (checks,) if isinstance(checks, str) else tuple(checks)
    unknown = [c for c in chosen if c not in CHECK_KINDS]
    if unknown or not chosen:
        raise UsageError(
            f"checks must name kinds from {CHECK_KINDS}, got {checks!r}"
            + (f" ({', '.join(map(repr, unknown))} unknown)" if unknown else " (empty)")
        )
    return tuple(k for k in CHECK_KINDS if k in chosen)


def validate(
    *,
    order: object,
    mode: object,
    rtol: object,
    atol: object,
    seed: object,
    checks: str | Iterable[str] | None,
    nondet_tol: object,
    step: object = None,
    max_evaluations: object = None,
) -> Options:
    """The options as a value, or a UsageError naming the first bad one."""
    if (
        isinstance(order, bool)
        or not isinstance(order, (int, np.integer))
        or not 1 <= order <= MAX_ORDER
    ):
        raise UsageError(f"order must be an integer from 1 to {MAX_ORDER}, got {order!r}")
    if mode not in MODES:
        raise UsageError(f"mode must be one of {MODES}, got {mode!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise UsageError(f"seed must be an integer, got {seed!r}")
    return Options(
        order=int(order),
        mode=str(mode),
        rtol=_non_negative("rtol", rtol),
        atol=_non_negative("atol", atol),
        seed=int(seed),
        checks=_kinds(checks),
        explicit=checks is not None,
        nondet_tol=_non_negative("nondet_tol", nondet_tol),
        step=_positive_step(step),
        max_evaluations=_budget(max_evaluations),
    )


def _positive_step(step: object) -> float | None:
    if step is None:
        return None
    value = _non_negative("step", step)
    if value == 0:
        raise UsageError("step must be a positive number (an absolute step), got 0")
    return value


def _budget(max_evaluations: object) -> int | None:
    if max_evaluations is None:
        return None
    if (
        isinstance(max_evaluations, bool)
        or not isinstance(max_evaluations, (int, np.integer))
        or max_evaluations < 1
    ):
        raise UsageError(f"max_evaluations must be a positive integer, got {max_evaluations!r}")
    return int(max_evaluations)
