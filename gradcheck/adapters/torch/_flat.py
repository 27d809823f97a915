"""Torch code seen through one flat float64 tensor: value, VJP, JVP, batched values, HVPs.

`_binding.py` decides what is checked (which inputs, which parameters, on which copies) and
hands this module a function `flat(xt) -> yt` from a 1-D float64 tensor to a 1-D float64 tensor
that runs the user's code. Everything here is written against that one shape, which is what
lets a gradient map x -> J(x)^T u be a `TorchFlat` of its own (and so be differentiated again).

Derivatives use plain autograd (`torch.autograd.grad`, `torch.autograd.forward_ad`), never a
re-implementation: a custom `torch.autograd.Function`'s own backward (or jvp) is what gets
checked. torch.func vectorises values (vmap) and batches of JVPs (vmap of torch.func.jvp, which
runs a Function's own jvp rule too); batches of VJPs are one backward with
`is_grads_batched=True`. The first vectorised row is cross-checked against the plain route,
and any failure falls back to a loop (`_common.Batching`).

Beside the numbers, the backward itself is checked as torch's own checker does: with output
gradients undefined (`undefined_grad`) and batched (`vmapped_vjps`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._differentiable import Differentiable, Leaf, Unsupported
from .._common import Batching, CannotVectorise, first_line, loop, rows_per_chunk
from ._scope import (
    RandomStream,
    agree,
    fallback_op,
    float64_default,
    once_differentiable,
    prepare_forward_ad,
    quiet_vmap,
    real_parts,
    without_fallback,
)
from ._undefined import undefined_grad

if TYPE_CHECKING:
    import torch

Flat = Callable[["torch.Tensor"], "torch.Tensor"]

# Below these batch sizes a plain loop is faster than vmap's fixed cost (measured: about
# 0.3 ms per vmapped call, 2 ms per vmapped torch.func.jvp, on small models; 3 cotangents of
# a small function: 0.42 ms looped against 0.66 ms through is_grads_batched, 6: 0.76 / 0.50).
LOOP_VALUES = 2
LOOP_JVPS = 6
LOOP_VJPS = 4


@dataclass(frozen=True)
class Hooks:
    """Conversions to the framework's objects, for derivatives the user passes as callables.

    Attributes:
        inputs: x -> all positional arguments, the checked ones rebuilt from x (float64).
        outputs: flat output-sized vector -> the structure of fn's result (a cotangent).
        tangents: flat input-sized vector -> one tensor per checked input.
        per_input: a per-input result (one tensor per checked input) -> the flat vector,
            where the leaves are not one per input (complex parts, finite entries); else None.
    """

    inputs: Callable[[np.ndarray], Any]
    outputs: Callable[[np.ndarray], Any]
    tangents: Callable[[np.ndarray], tuple[Any, ...]]
    per_input: Callable[[Any], np.ndarray | None] = lambda result: None


@dataclass(frozen=True)
class ByInput:
    """The batched map with one flat piece per checked tensor, so that a batch that varies
    only some of them can pass the others unbatched (Note: Unvaried inputs unbatched).

    Attributes:
        map: one 1-D float64 piece per checked tensor -> the 1-D float64 output.
        ranges: per checked tensor, its [start, stop) in the flat vector.
    """

    map: Callable[..., torch.Tensor]
    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Structure:
    """The checked outputs one by one, before they are flattened (for checks that need them).

    Attributes:
        parts: the flat input tensor -> the checked outputs as the code returned them.
        names: their report names ("output[1]"), in order.
    """

    parts: Callable[[torch.Tensor], list[torch.Tensor]]
    names: tuple[str, ...]


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
        structure: the outputs one by one (undefined output gradients, forward mode's
            missing tangents), or None for a map with one output (a gradient map).
        stream: the random numbers the code draws (see `RandomStream`).
        by_input: the batched map by checked tensor, where there are several (`ByInput`).
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
        structure: Structure | None = None,
        stream: RandomStream | None = None,
        order: int = 1,
        by_input: ByInput | None = None,
    ) -> None:
        super().__init__(x0, inputs, outputs, eps=eps, notes=notes)
        self._flat, self._batched, self._device, self._native = flat, batched, device, native
        self._hooks, self._structure = hooks, structure
        self._stream = stream or RandomStream()
        self._order = order  # derivative order this map computes (gradient maps: 2, 3, ...)
        self._batching = Batching(self, "torch.func.vmap")
        self._forward_unsupported: str | None = None
        self._by_input, self._by_input_checked = by_input, False

    # -- conversions ------------------------------------------------------------------------

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        """A float64 copy: user code (a backward writing into grad_output, a forward into its
        input) must not be able to change the checker's arrays."""
        import torch

        # from_numpy of a NumPy copy: a third of torch.tensor's cost, which a small check
        # pays hundreds of times.
        return torch.from_numpy(np.array(array, dtype=np.float64)).to(self._device)

    def _view(self, array: np.ndarray) -> torch.Tensor:
        """A float64 tensor sharing memory with array where possible (see `_vmap_chunk`)."""
        import torch

        return torch.as_tensor(np.ascontiguousarray(array, dtype=np.float64), device=self._device)

    @staticmethod
    def _numpy(tensor: torch.Tensor) -> np.ndarray:
        array: np.ndarray = tensor.detach().cpu().numpy()
        return array if array.dtype == np.float64 else array.astype(np.float64)

    @property
    def _vmappable(self) -> Flat | None:
        """The map for torch.func, unless vmap already failed on this function's values."""
        return None if self._batching.works.get("values") is False else self._batched

    # -- the interface ----------------------------------------------------------------------

    def session(self) -> contextlib.AbstractContextManager[None]:
        """The code's random stream, switched in once for the whole check (`RandomStream`)."""
        return self._stream.active()

    def value(self, x: np.ndarray) -> np.ndarray:
        with float64_default(self._stream):
            return self._numpy(self._flat(self._tensor(x)))

    def vjp(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        row: np.ndarray = self.vjps(x, np.asarray(u, dtype=np.float64)[None, :])[0]
        return row

    def vjps(self, x: np.ndarray, us: np.ndarray) -> np.ndarray:
        """One forward pass, then one batched backward (`is_grads_batched`) for all rows.

        The batched backward runs the user's backward under torch's own batching (as
        torch.autograd.gradcheck's check_batched_grad does); its first row is cross-checked
        against a plain backward, and any failure means one backward per row
        (`_common.Batching`), noted once.
        """
        import torch

        us = np.asarray(us, dtype=np.float64)
        if not len(us):
            return np.empty((0, self.n))
        with float64_default(self._stream), torch.enable_grad():
            xt = self._tensor(x).requires_grad_(True)
            y = self._flat(xt)
            if not y.requires_grad:  # no output depends on x through autograd
                return np.zeros((len(us), self.n))

            def one(u: np.ndarray) -> np.ndarray:
                (g,) = torch.autograd.grad(y, xt, self._tensor(u), True, allow_unused=True)
                return np.zeros(self.n) if g is None else self._numpy(g)

            if len(us) < LOOP_VJPS or self._batching.works.get("batched VJPs") is False:
                return loop(one, us, self.n)
            first = one(us[0])

            def batched(rows: np.ndarray) -> np.ndarray:
                try:
                    result = self._grads_batched(xt, y, rows)
                except Exception as error:
                    raise CannotVectorise(
                        f"is_grads_batched failed ({first_line(error)})"
                    ) from error
                agree(result[0], first, "is_grads_batched disagreed with a plain backward")
                return result

            return self._batching.run("batched VJPs", us, self.n, batched, one)

    def _grads_batched(self, xt: torch.Tensor, y: torch.Tensor, us: np.ndarray) -> np.ndarray:
        """J^T u for each row of us by torch.autograd.grad(is_grads_batched=True), in chunks."""
        import torch

        rows, out = rows_per_chunk(self.n + self.m), []
        with quiet_vmap():
            for start in range(0, len(us), rows):
                (g,) = torch.autograd.grad(
                    y,
                    xt,
                    self._tensor(us[start : start + rows]),
                    retain_graph=True,
                    allow_unused=True,
                    is_grads_batched=True,
                )
                out.append(
                    np.zeros((len(us[start : start + rows]), self.n))
                    if g is None
                    else self._numpy(g)
                )
        return np.concatenate(out)

    def vmapped_vjps(self, x: np.ndarray, us: np.ndarray) -> np.ndarray:
        """J^T u per row through torch's batching of the backward, for `batched_grad`.

        torch.func.vmap over torch.func.vjp's pullback where the code runs under torch.func
        (the route of jacrev and per-sample gradients, which uses a Function's own vmap
        rule), else `is_grads_batched` (the route of torch.autograd.gradcheck's
        check_batched_grad).

        Raises:
            Unsupported: neither route can batch this backward.
        """
        import torch

        us = np.asarray(us, dtype=np.float64)
        reasons = []
        if self._batched is not None:  # only the backward is vmapped: the forward need not be
            try:
                return self._func_vjps(x, us)
            except Exception as error:
                reasons.append(f"torch.func.vmap: {first_line(error)}")
        try:
            with float64_default(self._stream), torch.enable_grad():
                xt = self._tensor(x).requires_grad_(True)
                y = self._flat(xt)
                if not y.requires_grad:
                    raise Unsupported("no output depends on the inputs through autograd")
                return self._grads_batched(xt, y, us)
        except Unsupported:
            raise
        except Exception as error:
            reasons.append(f"is_grads_batched: {first_line(error)}")
        raise Unsupported("the backward cannot be batched here (" + "; ".join(reasons) + ")")

    def _func_vjps(self, x: np.ndarray, us: np.ndarray) -> np.ndarray:
        import torch

        batched = self._batched
        assert batched is not None
        with float64_default(self._stream), quiet_vmap():
            pull = torch.func.vjp(batched, self._tensor(x))[1]
            (grads,) = torch.func.vmap(pull)(self._tensor(us))
        return self._numpy(grads)

    def undefined_grad(self) -> str | None:
        """The backward with output gradients undefined, as torch's check_undefined_grad runs
        it (see `_undefined.undefined_grad`).

        Raises:
            Unsupported: no output requires grad, or this map has no outputs of its own.
        """
        import torch

        if self._structure is None:
            raise Unsupported("undefined output gradients apply to the function's own outputs")

        def start() -> torch.Tensor:
            return self._tensor(self.x0).requires_grad_(True)

        with float64_default(self._stream), torch.enable_grad():
            return undefined_grad(self._structure.parts, self._structure.names, start, self.inputs)

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
        prepare_forward_ad()
        try:
            with float64_default(self._stream), torch.enable_grad(), fwad.dual_level():
                # A gradient map calls autograd.grad inside, so its primal must require grad
                # (forward-over-reverse); elsewhere that would only slow forward mode down.
                primal = self._tensor(x).requires_grad_(self._order > 1)
                dual = fwad.make_dual(primal, self._tensor(v))  # type: ignore[no-untyped-call]
                if self._structure is None:
                    y = self._flat(dual)
                    tangent = fwad.unpack_dual(y).tangent  # type: ignore[no-untyped-call]
                    return np.zeros(self.m) if tangent is None else self._numpy(tangent)
                return self._numpy(self._tangents(self._structure.parts(dual)))
        except Unsupported:
            raise
        except (RuntimeError, NotImplementedError) as error:
            self._forward_unsupported = f"forward mode is not available: {first_line(error)}"
            raise Unsupported(self._forward_unsupported) from error

    def _tangents(self, outs: list[torch.Tensor]) -> torch.Tensor:
        """The outputs' tangents as one flat tensor.

        An output with no tangent is zero when it is constant, but when it depends on the
        inputs (it required grad at x0) forward mode is missing: torch's forward AD returns
        None where an op has no forward rule (scatter_reduce "prod", a torch.library.custom_op
        with register_autograd only), and torch.func.jvp silently returns zeros there.

        Raises:
            Unsupported: an output that depends on the inputs has no tangent.
        """
        import torch
        import torch.autograd.forward_ad as fwad

        assert self._structure is not None
        tangents = []
        for name, out in zip(self._structure.names, outs, strict=True):
            tangent = fwad.unpack_dual(out).tangent  # type: ignore[no-untyped-call]
            if tangent is None:
                if name in self._connected:
                    self._forward_unsupported = (
                        f"forward mode is not implemented for this function: torch's forward "
                        f"AD returns no tangent for {name}, which depends on the inputs (an op "
                        "without a forward-mode rule, e.g. a torch.library.custom_op with "
                        "register_autograd only); beware that torch.func.jvp through it "
                        "returns zeros silently"
                    )
                    raise Unsupported(self._forward_unsupported)
                tangent = torch.zeros_like(out)
            tangents.append(tangent)
        return torch.cat([p.to(torch.float64).reshape(-1) for t in tangents for p in real_parts(t)])

    @functools.cached_property
    def _connected(self) -> frozenset[str]:
        """Names of the outputs that depend on the inputs through autograd at x0."""
        import torch

        assert self._structure is not None
        with float64_default(self._stream), torch.enable_grad():
            outs = self._structure.parts(self._tensor(self.x0).requires_grad_(True))
        return frozenset(
            name for name, o in zip(self._structure.names, outs, strict=True) if o.requires_grad
        )

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
        with float64_default(self._stream), quiet_vmap():
            result = np.concatenate(
                [
                    self._numpy(torch.func.vmap(one)(self._tensor(vs[start : start + rows])))
                    for start in range(0, len(vs), rows)
                ]
            )
        agree(result[0], first, "torch.func.jvp under vmap disagreed with plain forward mode")
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

    def _varied(self, chunk: np.ndarray) -> tuple[bool, ...] | None:
        """Per checked tensor, whether any row of the chunk moves it; None where all or none
        move, or the map has no `ByInput`."""
        if self._by_input is None:
            return None
        moved = tuple(bool((chunk[:, a:b] != self.x0[a:b]).any()) for a, b in self._by_input.ranges)
        return moved if any(moved) and not all(moved) else None

    def _vmap_some(self, chunk: np.ndarray, moved: tuple[bool, ...]) -> np.ndarray:
        """A chunk that moves only some checked tensors, the others passed unbatched.

        Note: Unvaried inputs unbatched
            A full check's ladders move one coordinate per row, so a batch of rows varies
            one or two of a model's parameter tensors and holds the rest at x0. Batched
            anyway, every layer runs as a batched matmul over copies of the same weights;
            unbatched, the layers before the varied tensor run once and those after it
            against one weight. A 444-row batch of a 9,441-parameter tanh MLP that varies
            one weight matrix takes 13 ms instead of 25; over its full check the batched
            evaluations take 1.50 s instead of 2.04, less the ~4 ms per 32 MiB chunk that
            finding the varied tensors costs (`_varied` reads the chunk once). The first
            such chunk is cross-checked against a plain evaluation like vmap's first; code
            that cannot mix batched and unbatched tensors (an in-place update of an
            unbatched one) raises, and the whole batch is vmapped as before from then on.
        """
        import torch

        assert self._by_input is not None
        view = self._view(chunk)
        pieces = [
            view[:, a:b] if m else self._tensor(self.x0[a:b])
            for (a, b), m in zip(self._by_input.ranges, moved, strict=True)
        ]
        vmapped = torch.func.vmap(
            self._by_input.map, in_dims=tuple(0 if m else None for m in moved)
        )
        with float64_default(self._stream), quiet_vmap():
            result = self._numpy(vmapped(*pieces))
        if result.shape != (len(chunk), self.m):
            raise CannotVectorise(f"torch.func.vmap returned shape {result.shape}")
        if not self._by_input_checked:
            agree(
                result[0], self.value(chunk[0]), "vmap by input disagreed with a plain evaluation"
            )
            self._by_input_checked = True
        return result

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
        moved = None if check else self._varied(chunk)
        if moved is not None:
            try:
                return self._vmap_some(chunk, moved)
            except (RuntimeError, CannotVectorise):
                pass  # vmapped whole below, and so from then on where that works
        data = chunk.copy() if check else chunk
        vmapped = torch.func.vmap(self._batched)
        with float64_default(self._stream), quiet_vmap():
            try:
                with without_fallback() if check else contextlib.nullcontext():
                    result = self._numpy(vmapped(self._view(data)))
            except RuntimeError as error:
                op = fallback_op(error) if check else None
                if op is None:
                    raise
                self.notes = (
                    *self.notes,
                    f"torch.func.vmap has no batching rule for {op} and loops over it inside "
                    "(correct, slower); torch's warning about it is left out",
                )
                data = chunk.copy()
                result = self._numpy(vmapped(self._view(data)))
        if result.shape != (len(chunk), self.m):
            raise CannotVectorise(f"torch.func.vmap returned shape {result.shape}")
        if check:
            if not np.array_equal(data, chunk):
                raise CannotVectorise("the function writes into its inputs")
            distinct = bool((chunk != chunk[0]).any())
            for row in {0, len(chunk) - 1} if distinct else {0}:  # the last: a batch-mixing vmap
                plain = self.value(chunk[row])
                agree(result[row], plain, "torch.func.vmap disagreed with a plain evaluation")
                if self.at_point and self.at_point.plain is None:
                    if np.array_equal(chunk[row], self.x0):
                        self.at_point = replace(self.at_point, plain=plain)
        if moved is not None:  # the pieces failed where the whole batch works
            self._by_input = None
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

        with float64_default(self._stream), torch.enable_grad():
            probe = grad_flat(self._tensor(self.x0).requires_grad_(True))
        if once_differentiable(probe):
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
            stream=self._stream,
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

    def flat_inputs(self, result: Any) -> np.ndarray | None:
        """A user's per-input derivative of complex or partly held inputs, as the flat vector
        (torch's convention: the gradient of a complex input is ∂/∂re + i·∂/∂im)."""
        return None if self._hooks is None else self._hooks.per_input(result)

    def native_vjp(self, u: np.ndarray) -> np.ndarray | None:
        return None if self._native is None else self._native(np.asarray(u, dtype=np.float64))
