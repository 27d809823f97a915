"""The checked tensors as leaves of the flat vector, and the flat vector back as tensors.

A real tensor is one leaf; a complex tensor is two, "<name>.real" and "<name>.imag" (where
`_diagnosis` looks for a forgotten conjugate), put back together with `torch.complex`, which
autograd differentiates: so the derivatives checked are the real-view ones, torch's conjugate
Wirtinger convention as torch.autograd.gradcheck checks it. A tensor with entries that are not
finite (a -inf attention mask) is a `PartialLeaf` of its finite entries only; the others are
held at their values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._differentiable import Leaf
from .._common import dtype_name, part, validate_point
from ._scope import real_parts

if TYPE_CHECKING:
    import torch

# How many held entries a note lists before "…".
_LISTED = 4


@dataclass(frozen=True, slots=True)
class PartialLeaf(Leaf):
    """The finite entries of a tensor: a 1-D leaf whose entries are named where they sit.

    Attributes:
        entries: flat indices, in the whole tensor, of the entries this leaf holds.
        full_shape: the whole tensor's shape.
    """

    entries: tuple[int, ...]
    full_shape: tuple[int, ...]

    def locate(self, flat_index: int) -> str:
        index = np.unravel_index(self.entries[flat_index - self.offset], self.full_shape)
        return f"{self.name}[{', '.join(str(int(i)) for i in index)}]"


class Placement:
    """Where the flat vector's entries go: tensors for the user's code from leaf parts.

    Args:
        names: report names of the checked tensors.
        originals: the user's checked tensors (read only).

    Attributes:
        leaves: the leaves of the flat vector, in order.
        x0: the point, as float64.
        notes: what the report should say (complex parts, entries held constant).
    """

    def __init__(self, names: Sequence[str], originals: Sequence[torch.Tensor]) -> None:
        import torch

        self.originals, self.notes = list(originals), []
        self._held: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        leaves: list[Leaf] = []
        values: list[np.ndarray] = []
        for name, tensor in zip(names, originals, strict=True):
            flat = flat_numpy(tensor)
            finite = np.isfinite(flat)
            if not flat.size:  # nothing to differentiate in it, but the others still count
                self.notes.append(f"{name} is empty (shape {tuple(tensor.shape)})")
            if finite.all() or tensor.is_complex() or not finite.any():
                if flat.size:
                    validate_point(name, flat)
                for leaf_name, part_values in _parts(name, tensor, flat):
                    leaves.append(
                        Leaf(leaf_name, tuple(tensor.shape), dtype_name(tensor), _end(leaves))
                    )
                    values.append(part_values)
                continue
            entries = tuple(int(i) for i in np.flatnonzero(finite))
            self._held[len(leaves)] = (
                torch.as_tensor(flat, dtype=torch.float64, device=tensor.device),
                torch.as_tensor(entries, dtype=torch.long, device=tensor.device),
            )
            leaves.append(
                PartialLeaf(
                    name,
                    (len(entries),),
                    dtype_name(tensor),
                    _end(leaves),
                    entries,
                    tuple(tensor.shape),
                )
            )
            values.append(flat[finite])
            self.notes.append(_held_note(name, tensor, flat, finite))
        self.leaves = tuple(leaves)
        self.x0 = np.concatenate(values)  # may be empty: the check then passes with a note
        for name, tensor in zip(names, originals, strict=True):
            if tensor.is_complex():
                self.notes.append(
                    f"complex {name} checked as its real and imaginary parts (torch's "
                    "conjugate Wirtinger convention, as torch.autograd.gradcheck checks it)"
                )

    def tensors(self, xt: torch.Tensor, *, tangent: bool = False) -> list[torch.Tensor]:
        """The checked tensors at a flat point (views of xt where possible; differentiable).

        Args:
            xt: a flat float64 tensor (or a tangent of one).
            tangent: held entries are zero (a tangent), not their values.
        """
        import torch

        pieces = []
        for i, leaf in enumerate(self.leaves):
            piece = part(xt, leaf)
            if i in self._held:
                base, index = self._held[i]
                base = torch.zeros_like(base) if tangent else base
                piece = base.index_put((index,), piece).reshape(
                    leaf.full_shape  # type: ignore[attr-defined]
                )
            pieces.append(piece)
        return join(pieces, self.originals)

    def per_input(self, result: Any) -> np.ndarray | None:
        """A user's derivative with one tensor per checked tensor (or one tensor for one) as
        the flat vector, where leaves are not one per tensor; None where they are, or where
        the result does not fit (the caller's checks then name the problem)."""
        import torch

        if not self._held and not any(t.is_complex() for t in self.originals):
            return None
        parts = list(result) if isinstance(result, (tuple, list)) else [result]
        if len(parts) != len(self.originals) or not all(
            isinstance(p, torch.Tensor) and p.shape == t.shape
            for p, t in zip(parts, self.originals, strict=True)
        ):
            return None
        return self.flat(parts)

    def flat(self, tensors: Sequence[torch.Tensor | None]) -> np.ndarray:
        """Per-checked-tensor results (a gradient; None for zero) as one flat vector."""
        out, leaves = [], iter(self.leaves)
        for original, tensor in zip(self.originals, tensors, strict=True):
            count = 2 if original.is_complex() else 1
            group = [next(leaves) for _ in range(count)]
            if tensor is None:
                out.append(np.zeros(sum(leaf.size for leaf in group)))
                continue
            values = flat_numpy(tensor)
            if isinstance(group[0], PartialLeaf):
                values = values[list(group[0].entries)]
            out.append(values)
        return np.concatenate(out)


def _end(leaves: Sequence[Leaf]) -> int:
    return leaves[-1].offset + leaves[-1].size if leaves else 0


def _parts(name: str, tensor: torch.Tensor, flat: np.ndarray) -> list[tuple[str, np.ndarray]]:
    if not tensor.is_complex():
        return [(name, flat)]
    half = flat.size // 2
    return [(f"{name}.real", flat[:half]), (f"{name}.imag", flat[half:])]


def _held_note(name: str, tensor: torch.Tensor, flat: np.ndarray, finite: np.ndarray) -> str:
    bad = np.flatnonzero(~finite)
    where = ", ".join(
        f"{flat[i]} at {tuple(int(j) for j in np.unravel_index(i, tuple(tensor.shape)))}"
        for i in bad[:_LISTED]
    )
    more = f" and {bad.size - _LISTED} more" if bad.size > _LISTED else ""
    count = "1 entry that is" if bad.size == 1 else f"{bad.size} entries that are"
    return (
        f"{name} has {count} not finite ({where}{more}): held constant, and the check runs "
        f"on its {int(finite.sum())} finite entries"
    )


def leaf_triples(name: str, tensor: torch.Tensor) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, dtype) of the leaves of one output: "<name>.real" and "<name>.imag" for
    a complex one, else just name."""
    shape, dtype = tuple(tensor.shape), dtype_name(tensor)
    if tensor.is_complex():
        return [(f"{name}.real", shape, dtype), (f"{name}.imag", shape, dtype)]
    return [(name, shape, dtype)]


def join(parts: Sequence[torch.Tensor], templates: Sequence[Any]) -> list[torch.Tensor]:
    """Per template, its leaves' parts put back together: torch.complex(real, imag) for a
    complex template (differentiable, so autograd sees the real view), the part itself else."""
    import torch

    queue = iter(parts)
    return [
        torch.complex(next(queue), next(queue)) if _is_complex(t) else next(queue)
        for t in templates
    ]


def flat_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A tensor's entries as one float64 vector (real then imaginary part if complex)."""
    import torch

    return np.concatenate(
        [
            np.asarray(p.detach().cpu().to(torch.float64).numpy()).reshape(-1)
            for p in real_parts(tensor.detach())
        ]
    )


def _is_complex(obj: Any) -> bool:
    import torch

    return isinstance(obj, torch.Tensor) and obj.is_complex()
