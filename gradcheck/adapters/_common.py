"""What every adapter shares: the `Adapter` base, messages, `wrt`, nested outputs, fallbacks.

Nothing here imports a framework: the helpers work on any object with `dtype` and `shape`, on
NumPy, and on callables an adapter passes in. Two fallbacks every framework needs live here
once, so that they behave (and read in the report) the same everywhere:

- `retry_in_own_dtype`: code that cannot run on float64 copies (it mixes them with float32
  tensors it captured) is checked in the user's own dtype, with a note that says so.
- `Batching`: a batch of rows is vectorised (vmap, pfor) until that fails once; the failure is
  stated once in the notes, and that kind of batch loops from then on.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np

from .._differentiable import Differentiable, Leaf, Unsupported, leaves_of
from .._errors import ForeignOutputError, UsageError

Wrt = int | str | Sequence[int] | None
D = TypeVar("D", bound=Differentiable)

# Input plus output bytes of one vectorised chunk of a batch: bounds vmap's working set. A
# chunk that outgrows the processor's caches runs several times slower per row (JAX, the
# ~10k-parameter MLP's full check: 14 s in 256 MiB chunks, 3.2 s in 32 MiB ones; torch the
# same within noise), while a chunk this size still amortises a call's fixed cost.
CHUNK_BYTES = 32 * 2**20
# A note's reason is cut here: the report states a cause, not a traceback.
REASON_CHARS = 240
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Adapter(ABC):
    """Knows one framework: recognises its objects and binds user code to a Differentiable.

    Subclasses import their framework in `__init__` (never at module level), so that the
    registry in `adapters/__init__.py` can list them all without loading any framework.
    """

    framework: ClassVar[str]

    @abstractmethod
    def handles(self, obj: object) -> bool:
        """Whether obj is an array, tensor, module or layer of this framework."""

    @abstractmethod
    def bind(
        self, fn: Callable[..., Any], inputs: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
    ) -> Differentiable:
        """fn(*inputs, **kwargs) as a Differentiable of the inputs that `wrt` selects.

        Raises:
            UsageError: inputs of a kind this framework cannot differentiate, or a bad `wrt`.
        """

    def substitute(self, models: Sequence[Any]) -> AbstractContextManager[None]:
        """A context in which calling one of `models` runs a float64 clone of it (`models=`).

        Raises:
            UsageError: this framework's adapter has no such substitution.
        """
        raise UsageError(
            f"models= (float64 clones of the models a closure calls) is not available for "
            f"{self.framework}; promote the models yourself, or pass the model as fn"
        )


# -- messages -------------------------------------------------------------------------------


def first_line(error: BaseException, lines: int = 1) -> str:
    """A short reason from an exception: "TypeError: <its first line>".

    Args:
        error: the exception.
        lines: how many non-blank lines to keep (Keras puts the real cause after a header).
    """
    text = [line.strip() for line in _ANSI.sub("", str(error)).splitlines() if line.strip()]
    body = " ".join(text[:lines])[:REASON_CHARS]
    return f"{type(error).__name__}: {body}".rstrip(": ")


def dtype_name(obj: Any) -> str:
    """The dtype's name: "float32", "bfloat16", "int64" (torch's "torch." prefix dropped)."""
    dtype = getattr(obj, "dtype", None)
    if dtype is None or isinstance(obj, (float, int)):
        return "float64" if isinstance(obj, float) else type(obj).__name__
    return str(getattr(dtype, "name", dtype)).removeprefix("torch.")


def describe(obj: Any, noun: str = "array") -> str:
    """ "float32 array of shape (3, 2)" for anything with a dtype and a shape, else its type.

    Args:
        obj: what to describe, for a message.
        noun: what the framework calls its arrays ("tensor", "variable").
    """
    if hasattr(obj, "dtype") and hasattr(obj, "shape"):
        return f"{dtype_name(obj)} {noun} of shape {tuple(obj.shape)}"
    return type(obj).__name__


# -- inputs ---------------------------------------------------------------------------------


def select_positions(
    wrt: Wrt, differentiable: Sequence[bool], kinds: Sequence[str]
) -> tuple[int, ...]:
    """The positional inputs to check: `wrt` as given, or every floating-point input.

    Args:
        wrt: None, an index, or a sequence of indices (negative ones count from the end).
        differentiable: per positional input, whether it is a floating-point array.
        kinds: per positional input, a short description for messages ("int64 array").

    Raises:
        UsageError: an index out of range, a non-float input asked for, or nothing to check.
    """
    count = len(differentiable)
    if wrt is None:
        chosen = tuple(i for i in range(count) if differentiable[i])
        if not chosen:
            listing = ", ".join(f"input[{i}] is {k}" for i, k in enumerate(kinds)) or "no inputs"
            raise UsageError(
                f"no floating-point input to differentiate ({listing}); "
                "pass float arrays, e.g. x.astype(float)"
            )
        return chosen
    if isinstance(wrt, str):
        raise UsageError(
            f"wrt={wrt!r} applies to modules and layers; for functions pass input indices"
        )
    indices = (wrt,) if isinstance(wrt, (int, np.integer)) else tuple(wrt)
    if not indices:
        raise UsageError("wrt is empty: name at least one input")
    chosen_list: list[int] = []
    for index in indices:
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise UsageError(f"wrt entries must be input indices, got {index!r}")
        if not -count <= index < count:
            raise UsageError(f"wrt={index} is out of range: there are {count} positional inputs")
        position = int(index) % count
        if not differentiable[position]:
            raise UsageError(
                f"wrt asks for input[{position}], which is {kinds[position]}: only "
                "floating-point inputs can be differentiated"
            )
        if position not in chosen_list:
            chosen_list.append(position)
    return tuple(chosen_list)


def is_float(obj: object, is_array: Callable[[object], bool]) -> bool:
    """Whether obj can be differentiated: a real floating array of the framework (one that
    `is_array` accepts: "float32", "bfloat16", …) or a Python float."""
    return isinstance(obj, float) or (
        is_array(obj) and dtype_name(obj).startswith(("float", "bfloat"))
    )


def complex_input(name: str, obj: object, describe: Callable[[Any], str] = describe) -> UsageError:
    """The error for a complex input: it has no real gradient to check; say how to split it."""
    return UsageError(
        f"{name} is {describe(obj)}: complex inputs are not supported; "
        "check the real and imaginary parts as separate real inputs"
    )


def reject_complex(name: str, obj: object, describe: Callable[[Any], str] = describe) -> None:
    """Raise `complex_input` if obj is an array with a complex dtype."""
    if hasattr(obj, "dtype") and dtype_name(obj).startswith("complex"):
        raise complex_input(name, obj, describe)


def float_positions(
    inputs: Sequence[Any],
    wrt: Wrt,
    is_array: Callable[[object], bool],
    describe: Callable[[Any], str] = describe,
) -> tuple[int, ...]:
    """`select_positions` for positional arrays of a framework without complex derivatives:
    complex ones refused (see `is_float` for `is_array`, `describe` for messages)."""
    for i, arg in enumerate(inputs):
        reject_complex(f"input[{i}]", arg, describe)
    return select_positions(
        wrt, [is_float(a, is_array) for a in inputs], [describe(a) for a in inputs]
    )


def positions_to_check(
    inputs: Sequence[Any],
    wrt: Wrt,
    is_array: Callable[[object], bool],
    describe: Callable[[Any], str] = describe,
    as_array: Callable[[Any], np.ndarray] = np.asarray,
) -> tuple[int, ...]:
    """`float_positions`, the chosen arrays refused unless finite (adapters that hold
    entries that are not finite use `_partial.Placement` instead).

    Args:
        inputs: fn's positional inputs.
        wrt: as in `select_positions`.
        is_array: whether an input is an array of the framework (see `is_float`).
        describe: how messages name an input.
        as_array: an input as a NumPy array, for `validate_point`.
    """
    positions = float_positions(inputs, wrt, is_array, describe)
    for i in positions:
        validate_point(f"input[{i}]", np.asarray(as_array(inputs[i]), dtype=np.float64))
    return positions


def input_leaves(
    args: Sequence[Any], positions: Sequence[int], as_array: Callable[[Any], np.ndarray]
) -> tuple[tuple[Leaf, ...], np.ndarray]:
    """The leaves "input[i]" of the checked positional arrays, and x0: them as float64."""
    arrays = [np.asarray(as_array(args[i])) for i in positions]
    leaves = leaves_of(
        [(f"input[{i}]", a, dtype_name(a)) for i, a in zip(positions, arrays, strict=True)]
    )
    return leaves, np.concatenate([a.astype(np.float64).ravel() for a in arrays])


def check_output_size(size: int, m: int) -> None:
    """Raise unless the code returned as many output entries at another point as at x0."""
    if size != m:
        raise UsageError(
            f"the function returned {size} output entries at another point instead of {m}: "
            "its output structure must not depend on the input values"
        )


def part(flat: Any, leaf: Leaf) -> Any:
    """The entries of one leaf in a flat vector (NumPy or a framework's), in its shape."""
    return flat[leaf.offset : leaf.offset + leaf.size].reshape(leaf.shape)


def validate_point(name: str, arr: np.ndarray) -> None:
    """Reject inputs no derivative can be checked at: not finite. (An empty input is fine:
    with nothing left to differentiate the check passes with a note, as torch's does.)"""
    if not np.isfinite(arr).all():
        bad = np.unravel_index(int(np.flatnonzero(~np.isfinite(arr))[0]), arr.shape)
        raise UsageError(
            f"{name} contains {arr[bad]} at {tuple(int(i) for i in bad)}: "
            "derivatives can only be checked at finite points"
        )


# -- nested outputs (JAX uses its own pytrees) ------------------------------------------------


def flatten(obj: Any, name: str, is_leaf: Callable[[Any], bool]) -> list[tuple[str, Any]]:
    """Named leaves of a nested tuple/list/dict, depth first, dict keys in insertion order.

    Args:
        obj: the structure.
        name: the name of the whole, e.g. "output"; entries become "output[1]", "output['a']".
        is_leaf: what counts as an array of the framework (Python numbers always do).

    Raises:
        UsageError: a container or object that is neither.
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
    message = (
        f"{name} is a {type(obj).__name__}: outputs must be arrays, numbers, or tuples, lists "
        f"and dicts of them"
    )
    framework = _FRAMEWORK_OF_MODULE.get(type(obj).__module__.split(".")[0])
    if framework is None:
        raise UsageError(message)
    raise ForeignOutputError(
        f"{message}; the function returns {framework} values for these inputs: pass "
        f"framework={framework!r} to check it with {framework}'s derivatives",
        framework,
    )


# Top-level modules of array types whose framework can be forced with framework="...".
_FRAMEWORK_OF_MODULE = {
    "tensorflow": "tensorflow",
    "keras": "tensorflow",
    "jax": "jax",
    "jaxlib": "jax",
    "torch": "torch",
}


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


# -- fallback 1: the user's own dtype -------------------------------------------------------


def retry_in_own_dtype(
    in_float64: Callable[[], D],
    in_own_dtype: Callable[[Exception], D],
    clash: Callable[[Exception], bool],
) -> D:
    """Bind on float64 copies; if that fails with a dtype clash, bind in the user's dtype.

    Args:
        in_float64: binds on float64 copies (the normal route).
        in_own_dtype: binds in the user's own dtypes; gets the float64 route's error, for
            its note (see `own_dtype_note`).
        clash: whether an error of the float64 route is a dtype clash; any other error (the
            user's own) propagates unchanged.
    """
    try:
        return in_float64()
    except Exception as error:
        if not clash(error):
            raise
        failure = error
    return in_own_dtype(failure)  # outside `except`: its errors are not chained to the clash


def own_dtype_note(error: BaseException, dtypes: Iterable[str], cause: str) -> str:
    """The note of a check that `retry_in_own_dtype` runs in the user's dtypes."""
    return (
        f"the function cannot run on float64 copies ({first_line(error)}), most likely because "
        f"{cause}: it is checked in the user's dtype ({', '.join(sorted(set(dtypes)))}), with "
        "that dtype's round-off"
    )


# -- fallback 2: vmap or loop ---------------------------------------------------------------

BatchKind = Literal["values", "batched VJPs", "batched JVPs", "batches"]


class CannotVectorise(Exception):  # noqa: N818 - reads as "cannot vectorise: <why>"
    """Raised by a vectorised route that ran but cannot be trusted here; the message says why."""


def loop(one: Callable[[np.ndarray], np.ndarray], rows: np.ndarray, width: int) -> np.ndarray:
    """one(row) for each row, stacked as (k, width)."""
    return np.stack([one(row) for row in rows]) if len(rows) else np.empty((0, width))


def rows_per_chunk(width: int) -> int:
    """How many rows of `width` float64 entries (input plus output) fit in CHUNK_BYTES."""
    return max(1, CHUNK_BYTES // (8 * width))


def pad_rows(chunk: np.ndarray, size: int) -> np.ndarray:
    """chunk with its last row repeated up to `size` rows: fewer shapes for a tracing JIT."""
    if size <= len(chunk):
        return chunk
    return np.concatenate([chunk, np.repeat(chunk[-1:], size - len(chunk), 0)])


class Batching:
    """vmap-or-loop for one Differentiable: each kind of batch is vectorised until that fails.

    A kind is untried, working (its vectorised route ran) or failed. The first failure is
    stated once in the owner's notes ("values are evaluated in a loop: torch.func.vmap failed
    (…)") and the kind loops from then on. Before that note, the rows run plainly: a user
    error at any of them propagates from that plain call, unchanged, so a fallback never hides
    one, and the route is only called failed where the plain loop succeeds. A failure after
    the route has worked is the user's code failing, and propagates (unless it is a
    `CannotVectorise`).
    `Unsupported` always propagates: it is a verdict about the derivative, not about vmap.

    Args:
        owner: whose notes get the fallback's reason.
        route: the framework's vectorising transform, for the note ("jax.vmap").
        lines: lines of the error kept in the note (see `first_line`).
    """

    def __init__(self, owner: Differentiable, route: str, lines: int = 1) -> None:
        self._owner, self._route, self._lines = owner, route, lines
        self.works: dict[BatchKind, bool] = {}

    def run(
        self,
        kind: BatchKind,
        rows: np.ndarray,
        width: int,
        vectorised: Callable[[np.ndarray], np.ndarray],
        one: Callable[[np.ndarray], np.ndarray],
    ) -> np.ndarray:
        """Each row through `one`, as (k, width), by `vectorised(rows)` while that works."""
        if not len(rows):
            return np.empty((0, width))
        state = self.works.get(kind)
        if state is False:
            return loop(one, rows, width)
        try:
            result = vectorised(rows)
        except Unsupported:
            raise
        except Exception as error:
            if state and not isinstance(error, CannotVectorise):
                raise
            # Every row plainly, before vmap is called failed: a row where the code itself
            # raises (a Cholesky step outside the domain) propagates from here unchanged, and
            # leaves the vectorised route untried rather than blamed.
            looped = loop(one, rows, width)
            reason = (
                str(error)
                if isinstance(error, CannotVectorise)
                else (f"{self._route} failed ({first_line(error, self._lines)})")
            )
            self.fail(kind, reason)
            return looped
        if not state and len(rows) > 1 and (rows != rows[0]).any():
            # Trusted only once checked on distinct rows: identical ones cannot show a
            # transform that mixes the batch (torch.roll of a 0-d tensor under vmap rolls
            # across it, and the first vectorised call is often the repeats at x0).
            self.works[kind] = True
        return result

    def fail(self, kind: BatchKind, reason: str) -> None:
        """Loop this kind from now on, and say why in the owner's notes (once)."""
        self.works[kind] = False
        note = f"{kind} are evaluated in a loop: {reason}"
        if note not in self._owner.notes:
            self._owner.notes = (*self._owner.notes, note)
