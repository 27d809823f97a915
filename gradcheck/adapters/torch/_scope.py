"""How the user's code is run: float64 defaults, its own random numbers, quiet vmap.

Everything here wraps a call into the user's code or reads a tensor it returned, and restores
whatever it switches (default dtype, RNG state, vmap's fallback switches) even when the code
raises.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .._common import CannotVectorise

if TYPE_CHECKING:
    import torch


class RandomStream:
    """torch's global RNG as the checked code sees it, kept apart from the user's.

    Code that draws random numbers (dropout, a sampled noise term) gets a fresh draw at every
    evaluation, continuing from the user's state at the first one (so randomness stays
    visible to the checker, as nondeterminism), while the user's generators are left exactly
    as they were: their states are put back when the outermost scope ends. The CPU
    generator, and every CUDA device's once CUDA is initialised.

    Scopes nest: only the outermost one switches the states. A check holds one around all
    of its work (`TorchFlat.session`), so the dozens of calls inside it do not each copy the
    generator's state out and back (about 5 µs a call, measured).
    """

    def __init__(self) -> None:
        self._state: Any = None
        self._cuda: Any = None
        self._depth = 0
        self._user: tuple[Any, Any] = (None, None)

    def active(self) -> _Scope:
        """A context in which the code draws from this stream (the user's states put back)."""
        return _Scope(self, switch_dtype=False)

    def _enter(self) -> None:
        """Switch to this stream, keeping the user's (CPU, CUDA) states for `_exit`."""
        import torch

        self._depth += 1
        if self._depth > 1:
            return
        try:
            cuda = torch.cuda.is_initialized()  # type: ignore[no-untyped-call]  # no CUDA: False
            self._user = (torch.get_rng_state(), torch.cuda.get_rng_state_all() if cuda else None)
            if self._state is not None:
                torch.set_rng_state(self._state)
            if cuda and self._cuda is not None:
                torch.cuda.set_rng_state_all(self._cuda)
        except BaseException:
            self._depth -= 1
            raise

    def _exit(self) -> None:
        """Keep where this stream got to, and put the user's states back (outermost only)."""
        import torch

        self._depth -= 1
        if self._depth:
            return
        user, user_cuda = self._user
        self._user = (None, None)
        self._state = torch.get_rng_state()
        torch.set_rng_state(user)
        if user_cuda is not None:
            self._cuda = torch.cuda.get_rng_state_all()
            torch.cuda.set_rng_state_all(user_cuda)


class _Scope:
    """The context of `float64_default` and `RandomStream.active`.

    A plain class rather than `contextlib.contextmanager`: it wraps every call into the
    user's code, dozens per check, and the generator machinery cost more than the rest of a
    small function's evaluation.
    """

    __slots__ = ("_dtype", "_entered", "_stream", "_switch_dtype")

    def __init__(self, stream: RandomStream | None, *, switch_dtype: bool) -> None:
        self._stream, self._switch_dtype = stream, switch_dtype
        self._dtype: Any = None
        self._entered = False

    def __enter__(self) -> None:
        import torch

        if self._switch_dtype:
            self._dtype = torch.get_default_dtype()
            if self._dtype is not torch.float64:
                torch.set_default_dtype(torch.float64)
        if self._stream is not None:
            try:
                self._stream._enter()
            except BaseException:
                self._restore_dtype()
                raise
            self._entered = True

    def __exit__(self, *exc: object) -> None:
        try:
            if self._entered:
                assert self._stream is not None
                self._entered = False
                self._stream._exit()
        finally:
            self._restore_dtype()

    def _restore_dtype(self) -> None:
        import torch

        # Also where the code itself changed the default: the user's setting comes back.
        if self._switch_dtype and torch.get_default_dtype() is not self._dtype:
            torch.set_default_dtype(self._dtype)


def float64_default(stream: RandomStream | None = None) -> _Scope:
    """A context that makes tensors the user's code creates (torch.zeros(n), torch.tensor(0.5))
    float64, and lets it draw from `stream` instead of the user's RNG.

    Without this, a constant built inside the function stays float32 and either truncates the
    float64 copy (in-place writes) or breaks ops that do not promote (matmul). The user's
    setting is restored even when their code raises.
    """
    return _Scope(stream, switch_dtype=True)


def real_parts(tensor: torch.Tensor) -> list[torch.Tensor]:
    """[real, imag] of a complex tensor (differentiable views), [tensor] of a real one."""
    return [tensor.real, tensor.imag] if tensor.is_complex() else [tensor]


@contextlib.contextmanager
def quiet_vmap() -> Iterator[None]:
    """Without "performance drop ... batching rule not implemented": torch still vmaps (through
    a loop inside), which is correct; the warning is noise here (`TorchFlat._vmap_chunk`
    notes it once).

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
def without_fallback() -> Iterator[None]:
    """torch.func.vmap raising on an op with no batching rule instead of looping over it."""
    import torch

    functorch: Any = torch._C._functorch  # private switches, not in torch's stubs
    previous = functorch._is_vmap_fallback_enabled()
    functorch._set_vmap_fallback_enabled(False)
    try:
        yield
    finally:
        functorch._set_vmap_fallback_enabled(previous)


def fallback_op(error: Exception) -> str | None:
    """The op named by vmap's "<op> hit the vmap fallback which is currently disabled"."""
    match = re.match(r"(\S+) hit the vmap fallback", str(error))
    return match.group(1) if match else None


def agree(batched: np.ndarray, plain: np.ndarray, reason: str) -> None:
    """Raise CannotVectorise(reason) unless a vectorised row equals the plain one to rounding."""
    scale = float(np.max(np.abs(plain), initial=0.0, where=np.isfinite(plain))) + 1.0
    # np.allclose's checks cost six times this comparison, which runs on every first batch.
    with np.errstate(invalid="ignore"):
        close = (batched == plain) | (np.abs(batched - plain) <= 1e-9 * scale)
    if not (close | (np.isnan(batched) & np.isnan(plain))).all():
        raise CannotVectorise(reason)


_forward_ad_ready = False


def prepare_forward_ad() -> None:
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


def once_differentiable(tensor: torch.Tensor, limit: int = 100_000) -> bool:
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
