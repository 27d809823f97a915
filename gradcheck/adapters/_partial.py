"""The checked arrays as leaves of the flat vector, and results for them back as that vector.

Most checked arrays are one leaf each. Two kinds are not, in every framework alike:

- a complex array is two leaves of its shape, "<name>.real" and "<name>.imag" (the names
  `_diagnosis` reads to spot a forgotten conjugate);
- an array with entries that are not finite (a -inf attention mask, NaN padding) is a
  `PartialLeaf` of its finite entries only (issue #11.4): the others are held at their values,
  get no tangent and no difference step, and a note names them. The verdict is about the
  finite entries. An array with no finite entry at all is held whole, like an empty one
  (noted): nothing in it can be checked, and torch's checker passes such inputs too
  (`_safe_softmax` with every position masked).

`Placement` does this bookkeeping in NumPy, once for every adapter. An adapter rebuilds its own
arrays from leaf parts (`Placement.arrays`, or `place` and `assemble` per leaf) with its
framework's `Ops`, so that autodiff and vmap see a concatenation and a gather, and hands
results for whole arrays (a user's gradient, an own-dtype VJP) to `Placement.flat` or
`Placement.per_input`, which drop the held entries.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._differentiable import Leaf, leaves_of
from .._errors import UsageError

# How many held entries a note lists before "…".
LISTED = 4


@dataclass(frozen=True, slots=True)
class PartialLeaf(Leaf):
    """The finite entries of an array: a 1-D leaf whose entries are named where they sit.

    Attributes:
        entries: flat indices, in the whole array, of the entries this leaf holds.
        full_shape: the whole array's shape.
        held: the values of the other entries (in index order): they stay as they are.
    """

    entries: tuple[int, ...]
    full_shape: tuple[int, ...]
    held: tuple[float, ...]

    @property
    def given_shape(self) -> tuple[int, ...]:
        return self.full_shape

    def kept(self, block: np.ndarray) -> np.ndarray:
        return block[..., list(self.entries)]

    def locate(self, flat_index: int) -> str:
        index = np.unravel_index(self.entries[flat_index - self.offset], self.full_shape)
        return f"{self.name}[{', '.join(str(int(i)) for i in index)}]"

    def rebuild(self, piece: Any, ops: Ops, *, tangent: bool = False) -> Any:
        """The whole array, flat, from this leaf's entries: gather(concat(piece, held), order),
        differentiable in piece and vectorisable, in any framework's `ops`.

        Args:
            piece: this leaf's entries (a framework's 1-D array).
            ops: that framework's operations.
            tangent: held entries are zero (a tangent has none there), not their values.
        """
        held = np.zeros(len(self.held)) if tangent else np.asarray(self.held, dtype=np.float64)
        finite = np.zeros(len(self.entries) + len(self.held), dtype=bool)
        finite[list(self.entries)] = True
        order = np.empty(finite.size, dtype=np.int64)
        order[finite] = np.arange(len(self.entries))
        order[~finite] = len(self.entries) + np.arange(len(self.held))
        return ops.gather(ops.concat(piece, held), order)


@dataclass(frozen=True)
class Ops:
    """The array operations of one framework that `place` and `assemble` need.

    Attributes:
        concat: (1-D array, float64 NumPy values) -> the two concatenated.
        gather: (1-D array, int64 NumPy indices) -> array[indices].
        reshape: (array, shape) -> the array in that shape.
        join: (real part, imaginary part) -> the complex array.
    """

    concat: Callable[[Any, np.ndarray], Any]
    gather: Callable[[Any, np.ndarray], Any]
    reshape: Callable[[Any, tuple[int, ...]], Any]
    join: Callable[[Any, Any], Any]


def _complex(re: np.ndarray, im: np.ndarray) -> np.ndarray:
    """re + i·im, exactly: the product 1j·im would turn an infinite im into nan."""
    out = np.empty(np.shape(re), dtype=np.complex128)
    out.real, out.imag = re, im
    return out


NUMPY = Ops(lambda a, b: np.concatenate([a, b]), lambda a, i: a[i], np.reshape, _complex)


def place(leaf: Leaf, piece: Any, ops: Ops, *, tangent: bool = False) -> Any:
    """One leaf's entries (a 1-D slice of the flat vector, or of the leaf's shape) as the
    whole-shaped array they belong to, held entries put back (zero for a tangent)."""
    if isinstance(leaf, PartialLeaf):
        return ops.reshape(
            leaf.rebuild(ops.reshape(piece, (-1,)), ops, tangent=tangent), leaf.full_shape
        )
    return ops.reshape(piece, leaf.shape)


def assemble(
    group: Sequence[Leaf], pieces: Sequence[Any], ops: Ops, *, tangent: bool = False
) -> Any:
    """One checked array from its leaves' entries: placed, and joined if complex."""
    whole = [
        place(leaf, piece, ops, tangent=tangent) for leaf, piece in zip(group, pieces, strict=True)
    ]
    return ops.join(*whole) if len(whole) == 2 else whole[0]


class Placement:
    """The checked arrays as leaves of the flat vector (see the module docstring).

    Args:
        named: per checked array, (report name, its values as NumPy, the dtype its leaves
            report). The values may be complex; they are read, never kept.

    Attributes:
        leaves: the leaves of the flat vector, in order.
        groups: per array, its leaves: one, or (".real", ".imag") for a complex one.
        shapes: per array, its whole shape.
        x0: the point, as float64.
        notes: what the report should say (empty arrays, entries held constant).
    """

    def __init__(self, named: Sequence[tuple[str, np.ndarray, str]]) -> None:
        self.notes: list[str] = []
        self.shapes: list[tuple[int, ...]] = []
        triples: list[tuple[str, tuple[int, ...], str]] = []
        masks: list[np.ndarray] = []  # per leaf, which entries of its array are finite
        held: list[np.ndarray] = []  # per leaf, the values of the others
        values: list[np.ndarray] = []
        widths = []
        for name, array, dtype in named:
            array = np.asarray(array)
            self.shapes.append(array.shape)
            finite = np.isfinite(array).ravel()
            if not array.size:  # nothing to differentiate in it, but the others still count
                self.notes.append(f"{name} is empty (shape {array.shape})")
            elif not finite.any():  # like an empty array: nothing in it to differentiate
                self.notes.append(
                    f"{name} has no finite entry ({_listing(array, finite)}): all held "
                    "constant, nothing in it is checked (torch's checker passes such inputs too)"
                )
            elif not finite.all():
                self.notes.append(_held_note(name, array, finite))
            parts = _parts(name, array)
            widths.append(len(parts))
            for part_name, part_values in parts:
                flat = part_values.ravel()
                shape = array.shape if finite.all() else (int(finite.sum()),)
                triples.append((part_name, shape, dtype))
                masks.append(finite)
                held.append(flat[~finite])
                values.append(np.asarray(flat[finite], dtype=np.float64))
        leaves = [
            _partial(leaf, shape, mask, rest)
            for leaf, shape, mask, rest in zip(
                leaves_of(triples),
                [s for s, w in zip(self.shapes, widths, strict=True) for _ in range(w)],
                masks,
                held,
                strict=True,
            )
        ]
        self.leaves: tuple[Leaf, ...] = tuple(leaves)
        starts = list(itertools.accumulate(widths, initial=0))
        self.groups = [self.leaves[a:b] for a, b in itertools.pairwise(starts)]
        self.x0 = np.concatenate(values) if values else np.empty(0)
        # `arrays` runs at every evaluation: plain arrays skip the general assembly.
        self._slices = (
            [(leaf.offset, leaf.offset + leaf.size, leaf.shape) for leaf in self.leaves]
            if self.plain
            else None
        )

    @property
    def plain(self) -> bool:
        """Every array is one leaf of its own shape (no complex parts, nothing held)."""
        return all(len(g) == 1 and not isinstance(g[0], PartialLeaf) for g in self.groups)

    @property
    def has_complex(self) -> bool:
        return any(len(group) == 2 for group in self.groups)

    def arrays(self, x: Any, ops: Ops = NUMPY, *, tangent: bool = False) -> list[Any]:
        """The checked arrays at a flat point x (NumPy, or a framework's 1-D array).

        Args:
            x: a flat vector (or a tangent of one).
            ops: the framework's operations (NumPy's by default).
            tangent: held entries are zero (a tangent), not their values.
        """
        if self._slices is not None:  # every array one leaf of its own shape: views of x
            return [ops.reshape(x[start:end], shape) for start, end, shape in self._slices]
        return self.arrays_of([x[start:stop] for start, stop in self.ranges], ops, tangent=tangent)

    @functools.cached_property
    def ranges(self) -> tuple[tuple[int, int], ...]:
        """Per checked array, where its leaves lie in the flat vector: [start, stop)."""
        return tuple((g[0].offset, g[-1].offset + g[-1].size) for g in self.groups)

    def arrays_of(
        self, pieces: Sequence[Any], ops: Ops = NUMPY, *, tangent: bool = False
    ) -> list[Any]:
        """The checked arrays from their pieces of the flat vector (one per array, at
        `ranges`), which need not be slices of one vector: a batched evaluation can pass the
        arrays it does not vary unbatched."""
        arrays = []
        for group, piece in zip(self.groups, pieces, strict=True):
            start = group[0].offset
            leaf_pieces = [
                piece[leaf.offset - start : leaf.offset - start + leaf.size] for leaf in group
            ]
            arrays.append(assemble(group, leaf_pieces, ops, tangent=tangent))
        return arrays

    def flat(self, results: Sequence[np.ndarray | None], *, conjugate: bool = False) -> np.ndarray:
        """Results for whole arrays (a gradient each; None for zero) as one flat vector.

        A complex result r of a complex array is its parts (Re r, Im r): the derivative with
        respect to the real part plus i times that w.r.t. the imaginary part, PyTorch's
        convention; `conjugate` reads it as JAX's, (Re r, -Im r). Held entries are dropped.
        """
        out = []
        for group, result in zip(self.groups, results, strict=True):
            if result is None:
                out.append(np.zeros(sum(leaf.size for leaf in group)))
                continue
            r = np.asarray(result).ravel()
            parts = [r.real, -r.imag if conjugate else r.imag] if len(group) == 2 else [r]
            for leaf, values in zip(group, parts, strict=True):
                if isinstance(leaf, PartialLeaf):
                    values = values[list(leaf.entries)]
                out.append(np.asarray(values, dtype=np.float64))
        return np.concatenate(out) if out else np.empty(0)

    def per_input(
        self,
        result: Any,
        to_numpy: Callable[[Any], np.ndarray],
        *,
        positions: Sequence[int] | None = None,
        conjugate: bool = False,
    ) -> np.ndarray | None:
        """A user's per-input derivative (grad=, vjp=, hvp=) as the flat vector.

        Args:
            result: one array per checked array (a tuple or list; one per positional input
                also works), or a single array when one array is checked.
            to_numpy: a framework array as NumPy.
            positions: the positional index of each checked array, where a tuple with one
                part per positional input is accepted too.
            conjugate: as in `flat`.

        Returns:
            None when every array is a plain leaf (the caller matches and checks the parts
            itself), else the flat vector.

        Raises:
            UsageError: too few or too many parts, or a part of the wrong shape.
        """
        if self.plain:
            return None
        parts = list(result) if isinstance(result, (tuple, list)) else [result]
        if positions and len(parts) != len(self.groups) and len(parts) > max(positions):
            parts = [parts[p] for p in positions]
        if len(parts) != len(self.groups):
            raise UsageError(
                f"the derivative returned {len(parts)} arrays for {len(self.groups)} checked "
                "inputs: return one per input"
            )
        arrays = [None if p is None else np.asarray(to_numpy(p)) for p in parts]
        for group, shape, arr in zip(self.groups, self.shapes, arrays, strict=True):
            name = group[0].name.removesuffix(".real")
            if arr is not None and arr.shape != shape:
                raise UsageError(
                    f"the derivative returned shape {arr.shape} for {name}, expected {shape}"
                )
            if arr is not None and np.iscomplexobj(arr) and len(group) == 1:
                raise UsageError(
                    f"the derivative returned complex values for the real {name}: its "
                    "gradient must be real"
                )
        return self.flat(arrays, conjugate=conjugate)


def _parts(name: str, array: np.ndarray) -> list[tuple[str, np.ndarray]]:
    if np.iscomplexobj(array):
        return [(f"{name}.real", array.real), (f"{name}.imag", array.imag)]
    return [(name, array)]


def _partial(leaf: Leaf, shape: tuple[int, ...], finite: np.ndarray, held: np.ndarray) -> Leaf:
    """leaf as a `PartialLeaf` of the finite entries of its array if others are held."""
    if not held.size:
        return leaf
    entries = tuple(int(i) for i in np.flatnonzero(finite))
    return PartialLeaf(
        leaf.name, leaf.shape, leaf.dtype, leaf.offset, entries, shape, tuple(held.tolist())
    )


def _listing(array: np.ndarray, finite: np.ndarray) -> str:
    """ "-inf at (0, 3), nan at (1, 0) and 5 more": the first entries that are not finite."""
    bad = np.flatnonzero(~finite)
    flat = array.ravel()
    where = ", ".join(
        f"{flat[i]} at {tuple(int(j) for j in np.unravel_index(i, array.shape))}"
        for i in bad[:LISTED]
    )
    return where + (f" and {bad.size - LISTED} more" if bad.size > LISTED else "")


def _held_note(name: str, array: np.ndarray, finite: np.ndarray) -> str:
    bad = int((~finite).sum())
    count = "1 entry that is" if bad == 1 else f"{bad} entries that are"
    return (
        f"{name} has {count} not finite ({_listing(array, finite)}): held constant, and the "
        f"check runs on its {int(finite.sum())} finite entries"
    )
