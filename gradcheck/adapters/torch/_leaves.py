"""The checked tensors as leaves of the flat vector, and the flat vector back as tensors.

The bookkeeping is `_partial.Placement`'s, shared with every adapter: a complex tensor is two
leaves, "<name>.real" and "<name>.imag" (where `_diagnosis` looks for a forgotten conjugate),
put back together with `torch.complex`, which autograd differentiates: so the derivatives
checked are the real-view ones, torch's conjugate Wirtinger convention as
torch.autograd.gradcheck checks it. A tensor with entries that are not finite (a -inf
attention mask) is a `PartialLeaf` of its finite entries only; the others are held at their
values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._common import dtype_name
from .._partial import Ops
from .._partial import Placement as Shared

if TYPE_CHECKING:
    import torch


def _ops() -> Ops:
    import torch

    return Ops(
        concat=lambda a, b: torch.cat([a, torch.as_tensor(b, dtype=a.dtype, device=a.device)]),
        gather=lambda a, i: a[torch.as_tensor(i, device=a.device)],
        reshape=lambda a, shape: a.reshape(shape),
        join=torch.complex,
    )


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
        self._shared = Shared(
            [(n, to_numpy(t), dtype_name(t)) for n, t in zip(names, originals, strict=True)]
        )
        self.leaves, self.x0, self.notes = self._shared.leaves, self._shared.x0, self._shared.notes
        self.originals = list(originals)
        self._ops = _ops()
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
        return self._shared.arrays(xt, self._ops, tangent=tangent)

    @property
    def ranges(self) -> tuple[tuple[int, int], ...]:
        """Per checked tensor, where its leaves lie in the flat vector: [start, stop)."""
        return self._shared.ranges

    def tensors_of(self, pieces: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The checked tensors from one flat piece each (at `ranges`), batched or not."""
        return self._shared.arrays_of(pieces, self._ops)

    def per_input(self, result: Any) -> np.ndarray | None:
        """A user's derivative with one tensor per checked tensor (or one tensor for one) as
        the flat vector, where leaves are not one per tensor (torch's convention: the
        gradient of a complex input is ∂/∂re + i·∂/∂im); None where they are."""
        return self._shared.per_input(result, to_numpy)

    def flat(self, tensors: Sequence[torch.Tensor | None]) -> np.ndarray:
        """Per-checked-tensor results (a gradient; None for zero) as one flat vector."""
        return self._shared.flat([None if t is None else to_numpy(t) for t in tensors])


def to_numpy(tensor: Any) -> np.ndarray:
    """A tensor as float64 (complex128) NumPy; anything else through np.asarray."""
    import torch

    if not isinstance(tensor, torch.Tensor):
        return np.asarray(tensor)
    tensor = tensor.detach().cpu().resolve_conj()
    wide = torch.complex128 if tensor.is_complex() else torch.float64
    return np.asarray(tensor.to(wide).numpy())


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


def _is_complex(obj: Any) -> bool:
    import torch

    return isinstance(obj, torch.Tensor) and obj.is_complex()
