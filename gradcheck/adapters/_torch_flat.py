"""Torch code seen through one flat float64 tensor: value, VJP, JVP, batched values, HVPs.

`_torch.py` decides what is checked (which inputs, which parameters, on which copies) and hands
this module a function `flat(xt) -> yt` from a 1-D float64 tensor to a 1-D float64 tensor that
runs the user's code. Everything here is written against that one shape, which is what lets a
gradient map x -> J(x)^T u be a `TorchFlat` of its own (and so be differentiated again).

Derivatives use plain autograd (`torch.autograd.grad`, `torch.autograd.forward_ad`), never a
re-implementation: a custom `torch.autograd.Function`'s own backward (or jvp) is what gets
checked. torch.func vectorises values (vmap) and batches of JVPs (vmap of torch.func.jvp, which
runs a Function's own jvp rule too); the first vectorised result is always cross-checked
against the plain route, and any failure falls back to a loop.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from . import Differentiable, Leaf, Unsupported

if TYPE_CHECKING:
    import torch

Flat = Callable[["torch.Tensor"], "torch.Tensor"]

# Input plus output bytes of one vectorised chunk of values(): keeps vmap's working set bounded.
CHUNK_BYTES = 256 * 2**20
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


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


class TorchFlat(Differentiable):
    """flat: R^n -> R^m on float64 tensors, as the checker's float64 NumPy interface.

    Args:
        flat: runs the user's code on a 1-D float64 tensor and returns a 1-D float64 tensor;
            must be differentiable by autograd (reverse and, where the code allows, forward).
        batched: the same map for torch.func (vmappable), or None to always loop; it may
            read its input as views (no defensive copy), since `_vmapped` guards it.
        device: where the copies live (the user's tensors' device).
        native: J(x0)^T u in the user's own dtypes (for the dtype audit), or None.
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
    ) -> None:
        super().__init__(x0, inputs, outputs, eps=eps, notes=notes)
        self._flat, self._batched, self._device, self._native = flat, batched, device, native
        self._hooks = hooks
        self._vmap_checked = False
        self._forward_unsupported: str | None = None
        self._jvp_vmap: bool | None = None  # None: not tried yet
        self._order = 1  # derivative order this map computes (gradient maps: 2, 3, ...)

    # -- conversions ------------------------------------------------------------------------

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        """A float64 copy: user code (a backward writing into grad_output, a forward into its
        input) must not be able to change the checker's arrays."""
        import torch

        return torch.tensor(np.asarray(array, dtype=np.float64), device=self._device)

    def _view(self, array: np.ndarray) -> torch.Tensor:
        """A float64 tensor sharing memory with array where possible (see `_vmapped`)."""
        import torch

        return torch.as_tensor(np.ascontiguousarray(array, dtype=np.float64), device=self._device)

    @staticmethod
    def _numpy(tensor: torch.Tensor) -> np.ndarray:
        return np.asarray(tensor.detach().cpu().numpy(), dtype=np.float64)

    def _zeros(self, size: int) -> np.ndarray:
        return np.zeros(size, dtype=np.float64)

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
                rows.append(self._zeros(self.n) if g is None else self._numpy(g))
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
            self._forward_unsupported = f"forward mode is not available: {_first_line(error)}"
            raise Unsupported(self._forward_unsupported) from error
        return self._zeros(self.m) if tangent is None else self._numpy(tangent)

    def jvps(self, x: np.ndarray, vs: np.ndarray) -> np.ndarray:
        """J(x)v for each row, vectorised (vmap of torch.func.jvp) where that works.

        torch.func.jvp runs a custom Function's own jvp rule, like the plain forward mode; the
        first vectorised row is cross-checked against `jvp`, and any failure means a loop.
        """
        vs = np.asarray(vs, dtype=np.float64)
        if len(vs) < LOOP_JVPS or self._batched is None or self._forward_unsupported is not None:
            return super().jvps(x, vs)
        first = self.jvp(x, vs[0])  # raises Unsupported when there is no forward mode at all
        if self._jvp_vmap is False:
            return np.concatenate([first[None], super().jvps(x, vs[1:])])
        import torch

        batched, xt = self._batched, self._tensor(x)

        def one(v: torch.Tensor) -> torch.Tensor:
            tangent: torch.Tensor = torch.func.jvp(batched, (xt,), (v,))[1]
            return tangent

        rows = max(1, CHUNK_BYTES // (8 * (self.n + self.m)))
        out = []
        try:
            with float64_default(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*performance drop.*")
                for start in range(0, len(vs), rows):
                    chunk = self._tensor(vs[start : start + rows])
                    out.append(self._numpy(torch.func.vmap(one)(chunk)))
        except Exception:  # any failure of the vectorised route: loop instead
            self._jvp_vmap = False
            return np.concatenate([first[None], super().jvps(x, vs[1:])])
        result = np.concatenate(out)
        scale = float(np.max(np.abs(first), initial=0.0)) + 1.0
        if not np.allclose(result[0], first, rtol=0.0, atol=1e-9 * scale, equal_nan=True):
            self._jvp_vmap = False
            return np.concatenate([first[None], super().jvps(x, vs[1:])])
        self._jvp_vmap = True
        return result

    def values(self, xs: np.ndarray) -> np.ndarray:
        """f at each row, vectorised with torch.func.vmap in bounded chunks where it works.

        The first vectorised chunk is cross-checked against a plain evaluation of its first
        row: vmap either raises (data-dependent control flow, .item(), in-place writes,
        random ops, Functions without a vmap rule) or should agree to rounding. Either way
        the reason is noted once and the rest is a plain loop.
        """
        xs = np.asarray(xs, dtype=np.float64)
        if not len(xs):
            return np.empty((0, self.m))
        if self._batched is None or (self._vmap_checked and len(xs) <= LOOP_VALUES):
            return super().values(xs)
        rows = max(1, CHUNK_BYTES // (8 * (self.n + self.m)))
        out: list[np.ndarray] = []
        for start in range(0, len(xs), rows):
            chunk = xs[start : start + rows]
            batch = self._vmapped(chunk)
            if batch is None:
                return np.concatenate([*out, super().values(xs[start:])]) if out else \
                    super().values(xs)
            out.append(batch)
        return np.concatenate(out)

    def _vmapped(self, chunk: np.ndarray) -> np.ndarray | None:
        """One vectorised chunk, or None (and a note) when vmap cannot be trusted here.

        The batched map gets views of the chunk, not copies (copying every chunk costs as
        much as evaluating a small model). So the first chunk runs on a copy that is then
        compared with the original: code that writes into its inputs is caught there, before
        it could overwrite the checker's points, and is evaluated in the (copying) loop.
        """
        import torch

        assert self._batched is not None
        first = not self._vmap_checked
        data = chunk.copy() if first else chunk
        try:
            with float64_default(), warnings.catch_warnings():
                # "performance drop ... batching rule not implemented": torch still vmaps
                # (through a loop inside), which is correct; the warning is noise here.
                warnings.filterwarnings("ignore", message=".*performance drop.*")
                result = self._numpy(torch.func.vmap(self._batched)(self._view(data)))
        except Exception as error:  # any vmap failure means "use the loop"
            self._fall_back(f"torch.func.vmap failed ({_first_line(error)})")
            return None
        if result.shape != (len(chunk), self.m):
            self._fall_back(f"torch.func.vmap returned shape {result.shape}")
            return None
        if first:
            if not np.array_equal(data, chunk):
                self._fall_back("the function writes into its inputs")
                return None
            plain = self.value(chunk[0])
            scale = float(np.max(np.abs(plain), initial=0.0)) + 1.0
            if not np.allclose(result[0], plain, rtol=0.0, atol=1e-9 * scale, equal_nan=True):
                self._fall_back("torch.func.vmap disagreed with a plain evaluation")
                return None
            self._vmap_checked = True
        return result

    def _fall_back(self, reason: str) -> None:
        self._batched = None
        self.notes = (*self.notes, f"values are evaluated in a loop: {reason}")

    def gradient_map(self, u: np.ndarray) -> TorchFlat:
        """x -> J(x)^T u, differentiable again (double backward; forward-over-reverse)."""
        import torch

        u_t = self._tensor(u)
        flat, batched = self._flat, self._batched

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
            raise Unsupported("derivatives of order 2 and above go through an "
                              "autograd.Function marked @once_differentiable")
        leaves = tuple(Leaf(f"grad[{leaf.name}]", leaf.shape, "float64", leaf.offset)
                       for leaf in self.inputs)
        hooks = None if self._hooks is None else replace(self._hooks, outputs=self._hooks.tangents)
        result = TorchFlat(
            grad_flat, grad_batched, self.x0, self.inputs, leaves,
            device=self._device, eps=self.eps, notes=self.notes, hooks=hooks,
        )
        result._order = self._order + 1
        return result

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
