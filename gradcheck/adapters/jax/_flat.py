"""A JAX function of one flat float64 vector, with jit, vmap and the fallbacks they need.

`_pytree.py` turns the user's pytrees into one function `f: (n,) -> (m,)` written in JAX; this
module makes that function a `Differentiable`. Everything runs inside `jax.enable_x64(True)`,
a thread-local context manager, so float64 is available without touching the global
`jax_enable_x64` flag the user's own float32 program relies on.

Note: jit and vmap fallbacks
    Every evaluation, single calls included, goes through `jax.jit(jax.vmap(...))`: op-by-op
    dispatch compiles every primitive anyway, and one compiled batch shape serves a whole
    check. Code that cannot be traced (Python `if` on values, NumPy callbacks, host side
    effects) falls back to jitted single calls, then eager calls, in loops (`_common.Batching`);
    the first failure is recorded in `notes`. A user error raised by the eager retry
    propagates unchanged, so a fallback never hides an exception. Batches are cut into chunks
    under `_common.CHUNK_BYTES` of input+output and padded to powers of two so that jit
    compiles O(log k) shapes, not k.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from ..._differentiable import Differentiable, Leaf, Unsupported
from .._common import Batching, check_output_size, first_line, pad_rows, rows_per_chunk

# Small batches are padded up to MIN_ROWS rows (within SMALL_BYTES), so that single calls and
# the small batches of one check share one compiled shape: compiling costs far more than
# evaluating a few hundred rows of a function this small.
MIN_ROWS, SMALL_BYTES = 256, 4 * 2**20

FORWARD_OF_CUSTOM_VJP = (
    "forward mode is not defined for a jax.custom_vjp function (it only has a reverse rule); "
    "use jax.custom_jvp to give it one"
)
REVERSE_UNDEFINED = (
    "reverse mode is not defined for this function ({reason}): it is checked in forward mode only"
)


class JaxFlat(Differentiable):
    """f: R^n -> R^m written in JAX on flat float64 vectors.

    Args:
        fn: the flat JAX function, x (n,) float64 -> (m,) float64.
        x0, inputs, outputs, eps, notes, positions: as in `Differentiable`.
    """

    framework: ClassVar[str] = "jax"

    def __init__(
        self,
        fn: Callable[[Any], Any],
        x0: np.ndarray,
        inputs: tuple[Leaf, ...],
        outputs: tuple[Leaf, ...],
        *,
        eps: float,
        notes: tuple[str, ...] = (),
        positions: tuple[int, ...] | None = None,
    ) -> None:
        import jax  # deferred: see the adapters/__init__.py docstring

        super().__init__(x0, inputs, outputs, eps=eps, notes=notes, positions=positions)
        self._jax = jax
        self._f = fn
        self._jit_ok = True
        self._batching = Batching(self, "jax.vmap")
        vmap, jit = jax.vmap, jax.jit
        self._single: dict[str, Callable[..., Any]] = {
            "value": fn,
            "vjp": lambda x, u: jax.vjp(fn, x)[1](u)[0],
            "jvp": lambda x, v: jax.jvp(fn, (x,), (v,))[1],
        }
        self._jitted = {name: jit(f) for name, f in self._single.items()}
        batch: dict[str, Callable[..., Any]] = {
            "value": vmap(fn),
            "vjp": lambda x, us: vmap(jax.vjp(fn, x)[1])(us)[0],
            "jvp": lambda x, vs: vmap(lambda v: jax.jvp(fn, (x,), (v,))[1])(vs),
        }
        self._batched = {name: jit(f) for name, f in batch.items()}

    @contextmanager
    def scope(self) -> Iterator[None]:
        """The float64 context every JAX call of this function needs.

        The checker should call user-supplied JAX derivative callables (grad=, vjp=, …) inside
        it, otherwise JAX truncates the float64 arrays of `native_inputs` to float32.
        """
        with self._jax.enable_x64(True):
            yield

    def value(self, x: np.ndarray) -> np.ndarray:
        out = self._one("value", (), x, self.m)
        check_output_size(out.size, self.m)
        return out

    def values(self, xs: np.ndarray) -> np.ndarray:
        return self._run_batch("value", (), xs, self.m)

    def vjp(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self._one("vjp", (x,), u, self.n)

    def jvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self._one("jvp", (x,), v, self.m)

    def vjps(self, x: np.ndarray, us: np.ndarray) -> np.ndarray:
        return self._run_batch("vjp", (x,), us, self.n)

    def jvps(self, x: np.ndarray, vs: np.ndarray) -> np.ndarray:
        return self._run_batch("jvp", (x,), vs, self.m)

    def gradient_map(self, u: np.ndarray) -> Differentiable:
        """x ↦ J(x)ᵀu by jax.vjp; its own vjp/jvp are reverse-over-reverse and
        forward-over-reverse Hessian-vector products, and it nests to any order."""
        jax, jnp = self._jax, self._jax.numpy
        with jax.enable_x64(True):
            cotangent = jnp.asarray(u, dtype=jnp.float64)
        fn = self._f

        def pulled_back(x: Any) -> Any:
            return jax.vjp(fn, x)[1](cotangent)[0]

        outputs = tuple(
            Leaf(f"grad {leaf.name}", leaf.shape, "float64", leaf.offset) for leaf in self.inputs
        )
        return JaxFlat(pulled_back, self.x0, self.inputs, outputs, eps=self.eps, notes=self.notes)

    # -- how calls run ----------------------------------------------------------------------

    def _one(
        self, kind: str, fixed: tuple[np.ndarray, ...], row: np.ndarray, width: int
    ) -> np.ndarray:
        """A single call through the batched path: it reuses the compiled batch shapes."""
        rows = np.asarray(row, dtype=np.float64)[None]
        return np.asarray(self._run_batch(kind, fixed, rows, width)[0])

    def _run_batch(
        self, kind: str, fixed: tuple[np.ndarray, ...], rows: np.ndarray, width: int
    ) -> np.ndarray:
        """`kind` for each row of `rows`, vmapped in chunks, or in a loop where vmap fails."""
        return self._batching.run(
            "batches",
            np.asarray(rows, dtype=np.float64),
            width,
            lambda block: self._vmapped(kind, fixed, block, width),
            lambda row: self._run(kind, *fixed, row),
        )

    def _run(self, kind: str, *args: np.ndarray) -> np.ndarray:
        """One call of `kind`, jitted when the code can be traced, eagerly otherwise."""
        jnp = self._jax.numpy
        with self._jax.enable_x64(True):
            arrays = [jnp.asarray(a, dtype=jnp.float64) for a in args]
            try:
                if self._jit_ok:
                    try:
                        return np.asarray(self._jitted[kind](*arrays), dtype=np.float64)
                    except Exception as exc:
                        if _one_mode_only(exc):
                            raise
                        result = np.asarray(self._single[kind](*arrays), dtype=np.float64)
                        self._jit_ok = False  # only once the eager call has worked
                        self._note(f"evaluated without jax.jit, which failed: {first_line(exc)}")
                        return result
                return np.asarray(self._single[kind](*arrays), dtype=np.float64)
            except Exception as exc:
                _raise_if_one_mode_only(exc)
                raise

    def _vmapped(
        self, kind: str, fixed: tuple[np.ndarray, ...], rows: np.ndarray, width: int
    ) -> np.ndarray:
        jnp = self._jax.numpy
        row_bytes = 8 * (rows.shape[1] + width)
        cap = _power_of_two_below(rows_per_chunk(rows.shape[1] + width))
        least = min(cap, MIN_ROWS, _power_of_two_below(max(1, SMALL_BYTES // row_bytes)))
        parts = []
        try:
            with self._jax.enable_x64(True):
                args = [jnp.asarray(a, dtype=jnp.float64) for a in fixed]
                for start in range(0, len(rows), cap):
                    chunk = rows[start : start + cap]
                    size = min(cap, max(least, 1 << (len(chunk) - 1).bit_length()))
                    # device_put: faster than asarray
                    out = self._batched[kind](*args, self._jax.device_put(pad_rows(chunk, size)))
                    parts.append(np.asarray(out, dtype=np.float64)[: len(chunk)])
        except Exception as exc:
            _raise_if_one_mode_only(exc)
            raise
        return np.concatenate(parts).reshape(len(rows), width)

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes = (*self.notes, text)


def _power_of_two_below(k: int) -> int:
    return 1 << (k.bit_length() - 1)


def _is_forward_of_custom_vjp(exc: BaseException) -> bool:
    return isinstance(exc, TypeError) and "custom_vjp" in str(exc) and "jvp" in str(exc)


def _is_reverse_undefined(exc: BaseException) -> bool:
    """JAX cannot transpose the code: `lax.while_loop`, `fori_loop` with dynamic bounds."""
    return isinstance(exc, ValueError) and "Reverse-mode differentiation does not work" in str(exc)


def _one_mode_only(exc: BaseException) -> bool:
    """The code is differentiable in one mode only: not a failure to trace or to vectorise."""
    return _is_forward_of_custom_vjp(exc) or _is_reverse_undefined(exc)


def _raise_if_one_mode_only(exc: BaseException) -> None:
    """`Unsupported` with the reason, for a mode JAX cannot differentiate this code in (the
    checker then checks the other mode only, with a note)."""
    if _is_forward_of_custom_vjp(exc):
        raise Unsupported(FORWARD_OF_CUSTOM_VJP) from exc
    if _is_reverse_undefined(exc):
        reason = first_line(exc).split(" Try ")[0]
        raise Unsupported(REVERSE_UNDEFINED.format(reason=reason)) from exc
