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
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._differentiable import Differentiable, Leaf, Unsupported, locate
from .._common import Batching, CannotVectorise, first_line, loop, rows_per_chunk

if TYPE_CHECKING:
    import torch

Flat = Callable[["torch.Tensor"], "torch.Tensor"]

# Below these batch sizes a plain loop is faster than vmap's fixed cost (measured: about
# 0.3 ms per vmapped call, 2 ms per vmapped torch.func.jvp, on small models).
LOOP_VALUES = 2
LOOP_JVPS = 6
LOOP_VJPS = 2


class RandomStream:
    """torch's global RNG as the checked code sees it, kept apart from the user's.

    Code that draws random numbers (dropout, a sampled noise term) gets a fresh draw at every
    evaluation, continuing from the user's state at the first one (so randomness stays
    visible to the checker, as nondeterminism), while the user's generator is left exactly
    as it was: its state is put back after every call into the code. CPU generator only.
    """

    def __init__(self) -> None:
        self._state: Any = None

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        import torch

        user = torch.get_rng_state()
        if self._state is not None:
            torch.set_rng_state(self._state)
        try:
            yield
        finally:
            self._state = torch.get_rng_state()
            torch.set_rng_state(user)


@contextlib.contextmanager
def float64_default(stream: RandomStream | None = None) -> Iterator[None]:
    """Make tensors the user's code creates (torch.zeros(n), torch.tensor(0.5)) float64, and
    let it draw from `stream` instead of the user's RNG.

    Without this, a constant built inside the function stays float32 and either truncates the
    float64 copy (in-place writes) or breaks ops that do not promote (matmul). The user's
    setting is restored even when their code raises.
    """
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with stream.active() if stream is not None else contextlib.nullcontext():
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
    ) -> None:
        super().__init__(x0, inputs, outputs, eps=eps, notes=notes)
        self._flat, self._batched, self._device, self._native = flat, batched, device, native
        self._hooks, self._structure = hooks, structure
        self._stream = stream or RandomStream()
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
                _agree(result[0], first, "is_grads_batched disagreed with a plain backward")
                return result

            return self._batching.run("batched VJPs", us, self.n, batched, one)

    def _grads_batched(self, xt: torch.Tensor, y: torch.Tensor, us: np.ndarray) -> np.ndarray:
        """J^T u for each row of us by torch.autograd.grad(is_grads_batched=True), in chunks."""
        import torch

        rows, out = rows_per_chunk(self.n + self.m), []
        with _quiet_vmap():
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
        with float64_default(self._stream), _quiet_vmap():
            pull = torch.func.vjp(batched, self._tensor(x))[1]
            (grads,) = torch.func.vmap(pull)(self._tensor(us))
        return self._numpy(grads)

    def undefined_grad(self) -> str | None:
        """The backward with output gradients undefined, as torch's check_undefined_grad runs
        it: every output's at once, then (several outputs) each output's alone; and each
        output's backward alone (the others undefined, as torch's per-output Jacobian runs it)
        against the same cotangent with the others zero.

        torch marks a gradient undefined with its UndefinedGrad node; a backward must treat it
        as zeros (or return undefined gradients), and must not drop a defined gradient beside
        it (native_group_norm once ignored mean/rstd's gradients when the output's was
        undefined). Returns what went wrong, or None.

        Raises:
            Unsupported: no output requires grad (nothing to run a backward through).
        """
        import torch

        if self._structure is None:
            raise Unsupported("undefined output gradients apply to the function's own outputs")
        with float64_default(self._stream), torch.enable_grad():
            xt = self._tensor(self.x0).requires_grad_(True)
            outs = self._structure.parts(xt)
            picked = [i for i, o in enumerate(outs) if o.requires_grad]
            if not picked:
                raise Unsupported("no output requires grad")
            problem = self._zero_when_undefined(picked)
            if problem is None and len(picked) > 1:
                problem = self._alone_equals_zero_padded(xt, outs, picked)
        return problem

    def _zero_when_undefined(self, picked: list[int]) -> str | None:
        import torch

        assert self._structure is not None
        undefine: Any = torch._C._functions.UndefinedGrad  # what torch's own checker uses
        names = self._structure.names
        cases: list[tuple[str, set[int]]] = [("every output's gradient", set(picked))]
        if len(picked) > 1:
            cases += [(f"the gradient of {names[i]}", {i}) for i in picked]
        for what, which in cases:
            xt = self._tensor(self.x0).requires_grad_(True)
            outs = self._structure.parts(xt)
            ys = [undefine()(outs[i]) if i in which else outs[i] for i in picked]
            try:
                (g,) = torch.autograd.grad(
                    ys, xt, [torch.zeros_like(y) for y in ys], allow_unused=True
                )
            except Exception as error:
                return (
                    f"with {what} undefined (None), the backward raised "
                    f"{first_line(error)}: an undefined output gradient must count as zeros"
                )
            if g is not None and bool((g != 0).any()):
                grad = self._numpy(g)
                worst = int(np.argmax(np.abs(np.nan_to_num(grad, nan=np.inf))))
                return (
                    f"with {what} undefined (None) and the others zero, the backward "
                    f"returned nonzero input gradients (up to {grad[worst]:.3g} at "
                    f"{locate(self.inputs, worst)}): an undefined output gradient must "
                    "count as zeros"
                )
        return None

    def _alone_equals_zero_padded(
        self, xt: torch.Tensor, outs: list[torch.Tensor], picked: list[int]
    ) -> str | None:
        import torch

        assert self._structure is not None
        generator = torch.Generator(device=xt.device).manual_seed(0)
        for i in picked:
            u = torch.randn(
                outs[i].shape, dtype=outs[i].dtype, device=xt.device, generator=generator
            )
            zeros = [u if j == i else torch.zeros_like(outs[j]) for j in picked]
            try:
                (alone,) = torch.autograd.grad(outs[i], xt, u, True, allow_unused=True)
            except Exception as error:
                return (
                    f"with only {self._structure.names[i]}'s gradient defined (the others "
                    f"undefined), the backward raised {first_line(error)}"
                )
            (padded,) = torch.autograd.grad(
                [outs[j] for j in picked], xt, zeros, True, allow_unused=True
            )
            a, b = (np.zeros(self.n) if g is None else self._numpy(g) for g in (alone, padded))
            scale = float(np.max(np.abs(b), initial=0.0)) + 1e-300
            if not np.allclose(a, b, rtol=1e-9, atol=1e-9 * scale, equal_nan=True):
                worst = int(np.argmax(np.abs(a - b)))
                return (
                    f"with only {self._structure.names[i]}'s gradient defined (the others "
                    f"undefined), the backward returns {a[worst]:.6g} at "
                    f"{locate(self.inputs, worst)} where the same gradient with the others "
                    f"zero gives {b[worst]:.6g}: an undefined output gradient must count as "
                    "zeros, not change the defined ones"
                )
        return None

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
        with float64_default(self._stream), _quiet_vmap():
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
        vmapped = torch.func.vmap(self._batched)
        with float64_default(self._stream), _quiet_vmap():
            try:
                with _without_fallback() if check else contextlib.nullcontext():
                    result = self._numpy(vmapped(self._view(data)))
            except RuntimeError as error:
                op = _fallback_op(error) if check else None
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

        with float64_default(self._stream), torch.enable_grad():
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

    def native_vjp(self, u: np.ndarray) -> np.ndarray | None:
        return None if self._native is None else self._native(np.asarray(u, dtype=np.float64))


def real_parts(tensor: torch.Tensor) -> list[torch.Tensor]:
    """[real, imag] of a complex tensor (differentiable views), [tensor] of a real one."""
    return [tensor.real, tensor.imag] if tensor.is_complex() else [tensor]


@contextlib.contextmanager
def _quiet_vmap() -> Iterator[None]:
    """Without "performance drop ... batching rule not implemented": torch still vmaps (through
    a loop inside), which is correct; the warning is noise here (`_vmap_chunk` notes it once).

    torch.func.vmap prints it from C++ (BatchedFallback), past Python's warning filters, so
    its switch is turned off for the call; torch has no getter for it, and it is on by
    default, so it is turned back on.
    """
    import torch

    switch = getattr(torch._C._functorch, "_set_vmap_fallback_warning_enabled", None)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*performance drop.*")
        if switch is None:
            yield
            return
        switch(False)
        try:
            yield
        finally:
            switch(True)


@contextlib.contextmanager
def _without_fallback() -> Iterator[None]:
    """torch.func.vmap raising on an op with no batching rule instead of looping over it."""
    import torch

    functorch: Any = torch._C._functorch  # private switches, not in torch's stubs
    previous = functorch._is_vmap_fallback_enabled()
    functorch._set_vmap_fallback_enabled(False)
    try:
        yield
    finally:
        functorch._set_vmap_fallback_enabled(previous)


def _fallback_op(error: Exception) -> str | None:
    """The op named by vmap's "<op> hit the vmap fallback which is currently disabled"."""
    match = re.match(r"(\S+) hit the vmap fallback", str(error))
    return match.group(1) if match else None


def _agree(batched: np.ndarray, plain: np.ndarray, reason: str) -> None:
    """Raise CannotVectorise(reason) unless a vectorised row equals the plain one to rounding."""
    scale = float(np.max(np.abs(plain), initial=0.0, where=np.isfinite(plain))) + 1.0
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
