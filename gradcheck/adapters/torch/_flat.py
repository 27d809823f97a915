"""Torch code seen through one flat float64 tensor: value, VJP, JVP, batched values, HVPs.

`_binding.py` decides what is checked (which inputs, which parameters, on which copies) and
hands this module a function `flat(xt) -> yt` from a 1-D float64 tensor to a 1-D float64 tensor
that runs the user's code. Everything here is written against that one shape, which is what
lets a gradient map x -> J(x)^T u be a `TorchFlat` of its own (and so be differentiated again).

Derivatives use plain autograd (`torch.autograd.grad`, `torch.autograd.forward_ad`), never a
re-implementation: a custom `torch.autograd.Function`'s own backward (or jvp) is what gets
checked. torch.func vectorises values (vmap) and batches of JVPs (vmap of torch.func.jvp, which
runs a Function's own jvp rule too); the first vectorised row is cross-checked against the
plain route, and any failure falls back to a loop (`_common.Batching`).
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._differentiable import Differentiable, Leaf, Unsupported
from .._common import Batching, CannotVectorise, first_line, loop, rows_per_chunk

if TYPE_CHECKING:
    import torch

Flat = Callable[["torch.Tensor"], "torch.Tensor"]

# Below these batch sizes a plain loop is faster than vmap's fixed cost (measured: about
# 0.3 ms per vmapped call, 2 ms per vmapped torch.func.jvp, on small models).
LOOP_VALUES = 2
LOOP_JVPS = 6


@contextlib.contextmanager
def float64_default() -> Iterator[None]:
    """Make tensors the user's code creates (torch.zeros(n), torch.tensor(0.5)) float64.

    Without this, a constant built inside the function stays float32 and either truncates the
    float64 copy (in-place writes) or breaks ops that do not promote (matmul). The user's
    setting is restored even when their code raises.
    """
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@dataclass(frozen=True)
class Hooks:
    """Conversions to the framework's objects, for derivatives the user passes as callables.

    Attributes:
        inputs: x -> all positional arguments, the checked ones rebuilt from x (float64).
        outputs: flat output-sized vector -> the structure of fn's result (a cotangent).
        tangents: flat input-sized vector -> one tensor per checked input.
    """

    inputs: Callable[[np.ndarray], Any]
    outputs: Callable[[np.ndarray], Any]
    tangents: Callable[[np.ndarray], tuple[Any, ...]]


class TorchFlat(Differentiable):
    """flat: R^n -> R^m on float64 tensors, as the checker's float64 NumPy interface.

    Args:
        flat: runs the user's code on a 1-D float64 tensor and returns a 1-D float64 tensor;
            must be differentiable by autograd (reverse and, where the code allows, forward).
        batched: the same map for torch.func (vmappable), or None to always loop; it may
            read its input as views (no defensive copy), since `_vmap_chunk` guards it.
        device: where the copies live (the user's tensors' device).
        native: J(x0)^T u in the user's own dtypes (for the dtype audit), or None.
        hooks: the conversions for user-supplied derivatives, or None if it takes none.
    """

    framework = "torch"

    def __init__(
        self,
        flat: Flat,
        batched: Flat | None,
        x0: np.ndarray,
        inputs: tuple[Leaf, ...],
        outputs: tuple[Leaf, ...],
        *,
        device: Any,
        eps: float,
        notes: tuple[str, ...] = (),
        native: Callable[[np.ndarray], np.ndarray | None] | None = None,
        hooks: Hooks | None = None,
        order: int = 1,
    ) -> None:
        super().__init__(x0, inputs, outputs, eps=eps, notes=notes)
        self._flat, self._batched, self._device, self._native = flat, batched, device, native
        self._hooks = hooks
        self._order = order  # derivative order this map computes (gradient maps: 2, 3, ...)
        self._batching = Batching(self, "torch.func.vmap")
        self._forward_unsupported: str | None = None

    # -- conversions ------------------------------------------------------------------------

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        """A float64 copy: user code (a backward writing into grad_output, a forward into its
        input) must not be able to change the checker's arrays."""
        import torch

        return torch.tensor(np.asarray(array, dtype=np.float64), device=self._device)

    def _view(self, array: np.ndarray) -> torch.Tensor:
        """A float64 tensor sharing memory with array where possible (see `_vmap_chunk`)."""
        import torch

        return torch.as_tensor(np.ascontiguousarray(array, dtype=np.float64), device=self._device)

    @staticmethod
    def _numpy(tensor: torch.Tensor) -> np.ndarray:
        return np.asarray(tensor.detach().cpu().numpy(), dtype=np.float64)

    @property
    def _vmappable(self) -> Flat | None:
        """The map for torch.func, unless vmap already failed on this function's values."""
        return None if self._batching.works.get("values") is False else self._batched

    # -- the interface ----------------------------------------------------------------------

    def value(self, x: np.ndarray) -> np.ndarray:
        with float64_default():
            return self._numpy(self._flat(self._tensor(x)))

    def vjp(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        row: np.ndarray = self.vjps(x, np.asarray(u, dtype=np.float64)[None, :])[0]
        return row

    def vjps(self, x: np.ndarray, us: np.ndarray) -> np.ndarray:
        """One forward pass, then one backward pass per row of us (the graph is kept)."""
        import torch

        if not len(us):
            return np.empty((0, self.n))
        with float64_default(), torch.enable_grad():
            xt = self._tensor(x).requires_grad_(True)
            y = self._flat(xt)
            if not y.requires_grad:  # no output depends on x through autograd
                return np.zeros((len(us), self.n))
            rows = []
            for i, u in enumerate(us):
                (g,) = torch.autograd.grad(
                    y, xt, self._tensor(u), retain_graph=i + 1 < len(us), allow_unused=True
                )
                rows.append(np.zeros(self.n) if g is None else self._numpy(g))
        return np.stack(rows)

    def jvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Forward mode (dual numbers), so a custom Function's own jvp is what is checked.

        Raises:
            Unsupported: the code has no forward-mode rule (e.g. an autograd.Function without
                jvp); value() already ran at such points, so the failure is forward mode's.
        """
        import torch
        import torch.autograd.forward_ad as fwad

        if self._forward_unsupported is not None:
            raise Unsupported(self._forward_unsupported)
        _prepare_forward_ad()
        try:
            with float64_default(), torch.enable_grad(), fwad.dual_level():
                # A gradient map calls autograd.grad inside, so its primal must require grad
                # (forward-over-reverse); elsewhere that would only slow forward mode down.
                primal = self._tensor(x).requires_grad_(self._order > 1)
                y = self._flat(fwad.make_dual(primal, self._tensor(v)))  # type: ignore[no-untyped-call]
                tangent = fwad.unpack_dual(y).tangent  # type: ignore[no-untyped-call]
        except (RuntimeError, NotImplementedError) as error:
            self._forward_unsupported = f"forward mode is not available: {first_line(error)}"
            raise Unsupported(self._forward_unsupported) from error
        return np.zeros(self.m) if tangent is None else self._numpy(tangent)

    def jvps(self, x: np.ndarray, vs: np.ndarray) -> np.ndarray:
        """J(x)v for each row, vectorised (vmap of torch.func.jvp) where that works.

        torch.func.jvp runs a custom Function's own jvp rule, like the plain forward mode; the
        first vectorised row is cross-checked against `jvp`, and any failure means a loop.
        """
        vs = np.asarray(vs, dtype=np.float64)
        plain = functools.partial(self.jvp, x)
        if (
            len(vs) < LOOP_JVPS
            or self._vmappable is None
            or self._forward_unsupported is not None
            or self._batching.works.get("batched JVPs") is False
        ):
            return loop(plain, vs, self.m)
        first = self.jvp(x, vs[0])  # raises Unsupported when there is no forward mode at all
        return self._batching.run(
            "batched JVPs", vs, self.m, lambda rows: self._vmap_jvps(x, rows, first), plain
        )

    def _vmap_jvps(self, x: np.ndarray, vs: np.ndarray, first: np.ndarray) -> np.ndarray:
        import torch

        batched, xt = self._batched, self._tensor(x)
        assert batched is not None

        def one(v: torch.Tensor) -> torch.Tensor:
            tangent: torch.Tensor = torch.func.jvp(batched, (xt,), (v,))[1]
            return tangent

        rows = rows_per_chunk(self.n + self.m)
        with float64_default(), _quiet_vmap():
            result = np.concatenate(
                [
                    self._numpy(torch.func.vmap(one)(self._tensor(vs[start : start + rows])))
                    for start in range(0, len(vs), rows)
                ]
            )
        _agree(result[0], first, "torch.func.jvp under vmap disagreed with plain forward mode")
        return result

    def values(self, xs: np.ndarray) -> np.ndarray:
        """f at each row, vectorised with torch.func.vmap in bounded chunks where it works.

        The first vectorised chunk is cross-checked against a plain evaluation of its first
        row: vmap either raises (data-dependent control flow, .item(), in-place writes,
        random ops, Functions without a vmap rule) or should agree to rounding. Either way
        the reason is noted once and the rest is a plain loop.
        """
        xs = np.asarray(xs, dtype=np.float64)
        works = self._batching.works.get("values")
        if self._batched is None or works is False or (works and len(xs) <= LOOP_VALUES):
            return loop(self.value, xs, self.m)
        return self._batching.run("values", xs, self.m, self._vmap_values, self.value)

    def _vmap_values(self, xs: np.ndarray) -> np.ndarray:
        rows, check = rows_per_chunk(self.n + self.m), not self._batching.works.get("values")
        return np.concatenate(
            [
                self._vmap_chunk(xs[start : start + rows], check and start == 0)
                for start in range(0, len(xs), rows)
            ]
        )

    def _vmap_chunk(self, chunk: np.ndarray, check: bool) -> np.ndarray:
        """One vectorised chunk; `check` it (the first one) before vmap is trusted here.

        The batched map gets views of the chunk, not copies (copying every chunk costs as
        much as evaluating a small model). So the first chunk runs on a copy that is then
        compared with the original: code that writes into its inputs is caught there, before
        it could overwrite the checker's points, and is evaluated in the (copying) loop.

        Raises:
            CannotVectorise: a wrong shape, writes into the inputs, or disagreement.
        """
        import torch

        assert self._batched is not None
        data = chunk.copy() if check else chunk
        with float64_default(), _quiet_vmap():
            result = self._numpy(torch.func.vmap(self._batched)(self._view(data)))
        if result.shape != (len(chunk), self.m):
            raise CannotVectorise(f"torch.func.vmap returned shape {result.shape}")
        if check:
            if not np.array_equal(data, chunk):
                raise CannotVectorise("the function writes into its inputs")
            plain = self.value(chunk[0])
            _agree(result[0], plain, "torch.func.vmap disagreed with a plain evaluation")
        return result

    def gradient_map(self, u: np.ndarray) -> TorchFlat:
        """x -> J(x)^T u, differentiable again (double backward; forward-over-reverse)."""
        import torch

        u_t = self._tensor(u)
        flat, batched = self._flat, self._vmappable

        def grad_flat(xt: torch.Tensor) -> torch.Tensor:
            with torch.enable_grad():
                # A plain value() call passes a tensor without grad: make it a leaf; inside an
                # outer vjp/jvp it already requires grad and must stay connected.
                xi = xt if xt.requires_grad else xt.detach().requires_grad_(True)
                y = flat(xi)
                if not y.requires_grad:
                    return torch.zeros_like(xi)
                (g,) = torch.autograd.grad(y, xi, u_t, create_graph=True, allow_unused=True)
            return torch.zeros_like(xi) if g is None else g

        grad_batched: Flat | None = None
        if batched is not None:
            base = batched

            def grad_batched(xt: torch.Tensor) -> torch.Tensor:
                pull = torch.func.vjp(base, xt)[1]
                grad: torch.Tensor = pull(u_t)[0]
                return grad

        with float64_default(), torch.enable_grad():
            probe = grad_flat(self._tensor(self.x0).requires_grad_(True))
        if _once_differentiable(probe):
            raise Unsupported(
                "derivatives of order 2 and above go through an "
                "autograd.Function marked @once_differentiable"
            )
        leaves = tuple(
            Leaf(f"grad[{leaf.name}]", leaf.shape, "float64", leaf.offset) for leaf in self.inputs
        )
        hooks = None if self._hooks is None else replace(self._hooks, outputs=self._hooks.tangents)
        return TorchFlat(
            grad_flat,
            grad_batched,
            self.x0,
            self.inputs,
            leaves,
            device=self._device,
            eps=self.eps,
            notes=self.notes,
            hooks=hooks,
            order=self._order + 1,
        )

    def _hook(self, name: str) -> Any:
        if self._hooks is None:
            raise Unsupported("this torch function does not accept user-supplied derivatives")
        return getattr(self._hooks, name)

    def native_inputs(self, x: np.ndarray) -> Any:
        """All positional arguments as tensors, the checked ones rebuilt from x (float64)."""
        return self._hook("inputs")(x)

    def native_outputs(self, flat: np.ndarray) -> Any:
        """A flat output-sized vector in the structure of fn's result (for cotangents)."""
        return self._hook("outputs")(flat)

    def native_tangents(self, flat: np.ndarray) -> tuple[Any, ...]:
        """A flat input-sized vector as one float64 tensor per checked input (for tangents)."""
        return tuple(self._hook("tangents")(flat))

    def native_vjp(self, u: np.ndarray) -> np.ndarray | None:
        return None if self._native is None else self._native(np.asarray(u, dtype=np.float64))


@contextlib.contextmanager
def _quiet_vmap() -> Iterator[None]:
    """Without "performance drop ... batching rule not implemented": torch still vmaps (through
    a loop inside), which is correct; the warning is noise here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*performance drop.*")
        yield


def _agree(batched: np.ndarray, plain: np.ndarray, reason: str) -> None:
    """Raise CannotVectorise(reason) unless a vectorised row equals the plain one to rounding."""
    scale = float(np.max(np.abs(plain), initial=0.0)) + 1.0
    if not np.allclose(batched, plain, rtol=0.0, atol=1e-9 * scale, equal_nan=True):
        raise CannotVectorise(reason)


_forward_ad_ready = False


def _prepare_forward_ad() -> None:
    """Load torch's forward-AD decompositions once, without their DeprecationWarning.

    torch loads them on the first `dual_level()`, scripting them with `torch.jit.script`, which
    warns in torch >= 2.10; under `-W error` (pytest's filterwarnings) that warning would be an
    error raised from inside torch, not from the user's code.
    """
    global _forward_ad_ready
    if _forward_ad_ready:
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*torch.jit.script.*", DeprecationWarning)
        import torch.autograd.forward_ad as fwad

        loader = getattr(fwad, "_maybe_load_decompositions", None)  # private: may go away
        if loader is not None:
            loader()
    _forward_ad_ready = True


def _once_differentiable(tensor: torch.Tensor, limit: int = 100_000) -> bool:
    """Whether tensor's graph holds the error node @once_differentiable leaves behind.

    Differentiating through that node does not always raise: autograd may report the input
    as unused and a second derivative would silently come back as zero.
    """
    seen: set[Any] = set()
    stack = [tensor.grad_fn]
    while stack and len(seen) < limit:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if "Error" in node.name():
            return True
        stack.extend(next_node for next_node, _ in node.next_functions)
    return False
