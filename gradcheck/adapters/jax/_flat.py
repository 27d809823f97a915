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

Note: compiled programs are reused across checks
    A test suite checks one function many times on fresh inputs of the same shapes (the
    hypothesis pattern); compiling its programs again every time cost ~30x the check itself.
    The flat function is written as f(env, x): `env` holds the arrays that are not checked
    (float64 copies), so it is a jit argument, not a constant baked into the program.
    `Programs` (the jitted value/VJP/JVP, single and batched, and lazily those of the gradient
    map for higher orders) is cached per user function object, in a `WeakKeyDictionary` (the
    cache never keeps a user's function alive, and its programs go with it) and per static
    structure (`_pytree`'s key: tree structures, which leaves are checked, the values of
    non-float leaves); jit itself keys the compiled code by the abstract shapes and dtypes of
    env and x, as `jax.jit` does for the user. The caveat is jit's own: a function whose
    behaviour changes through globals or mutated closure variables between checks is not
    traced again, so a later check sees the earlier behaviour. Functions that cannot be
    weakly referenced, and bound methods (a new object at every attribute access), are not
    cached.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import cached_property, partial
from typing import Any, ClassVar

import numpy as np

from ..._differentiable import Differentiable, Leaf, Unsupported
from .._common import Batching, check_output_size, first_line, pad_rows, rows_per_chunk

# Small batches are padded up to MIN_ROWS rows (within SMALL_BYTES), so that single calls and
# the small batches of one check share one compiled shape: compiling costs far more than
# evaluating a few hundred rows of a function this small. A function whose every row reads
# large arrays besides its own (tanh(W x) with a 1000×1000 W: 8 MB a row) is padded to fewer
# rows, within SMALL_READS of what the padded rows read: 256 rows of it cost 60 ms a call.
MIN_ROWS, SMALL_BYTES, SMALL_READS = 256, 4 * 2**20, 256 * 2**20

FORWARD_OF_CUSTOM_VJP = (
    "forward mode is not defined for a jax.custom_vjp function (it only has a reverse rule); "
    "use jax.custom_jvp to give it one"
)
REVERSE_UNDEFINED = (
    "reverse mode is not defined for this function ({reason}): it is checked in forward mode only"
)


FlatFn = Callable[[Any, Any], Any]  # f(env, x): the flat float64 function of x (n,) -> (m,)


class Programs:
    """The jitted programs of one flat function f(env, x), shared by every check of it.

    See "Note: compiled programs are reused across checks".
    """

    def __init__(self, fn: FlatFn, ref: Callable[[], Any] | None = None) -> None:
        import jax  # deferred: see the adapters/__init__.py docstring

        self._jax, self.fn, self.ref = jax, fn, ref
        self.extra: dict[str, Callable[..., Any]] = {}  # e.g. the dtype audit's program
        vmap, jit = jax.vmap, jax.jit
        self.single: dict[str, Callable[..., Any]] = {
            "value": fn,
            "vjp": lambda env, x, u: jax.vjp(partial(fn, env), x)[1](u)[0],
            "jvp": lambda env, x, v: jax.jvp(partial(fn, env), (x,), (v,))[1],
        }
        self.jitted = {name: jit(f) for name, f in self.single.items()}
        batch: dict[str, Callable[..., Any]] = {
            "value": lambda env, xs: vmap(partial(fn, env))(xs),
            "vjp": lambda env, x, us: vmap(jax.vjp(partial(fn, env), x)[1])(us)[0],
            "jvp": lambda env, x, vs: vmap(lambda v: jax.jvp(partial(fn, env), (x,), (v,))[1])(vs),
        }
        self.batched = {name: jit(f) for name, f in batch.items()}
        self._gradient: Programs | None = None
        self._shared: dict[Hashable, int] = {}

    def shared_bytes(self, env: Any, x: np.ndarray) -> int:
        """Bytes every row's evaluation reads besides its own: env's arrays and the constants
        the function closes over (found by tracing it once per shape; 0 where it cannot be
        traced, as for jit)."""
        jax = self._jax
        leaves, structure = jax.tree_util.tree_flatten(env)
        key = (x.shape, structure, tuple(np.shape(leaf) for leaf in leaves))
        if key not in self._shared:
            try:
                with jax.enable_x64(True):
                    consts = jax.make_jaxpr(self.fn)(env, x).consts
            except Exception:  # untraceable code runs unjitted, in loops: no batches to pad
                consts = []
            self._shared[key] = sum(int(getattr(a, "nbytes", 0)) for a in [*leaves, *consts])
        return self._shared[key]

    def gradient(self) -> Programs:
        """The programs of x ↦ J(x)ᵀu, with env' = (env, u): the cotangent is an argument."""
        if self._gradient is None:
            jax, fn = self._jax, self.fn

            def pulled_back(env: Any, x: Any) -> Any:
                inner, u = env
                return jax.vjp(partial(fn, inner), x)[1](u)[0]

            self._gradient = Programs(pulled_back)
        return self._gradient


# user function -> static structure -> its programs (see the Note above)
_CACHE: weakref.WeakKeyDictionary[Any, dict[Hashable, Programs]] = weakref.WeakKeyDictionary()


def cached_programs(user_fn: Any, key: Hashable | None, build: Callable[[Any], FlatFn]) -> Programs:
    """The programs of `build(ref)`, a flat function that calls `ref()` (a weak reference to
    `user_fn`), reused for the same function object and `key`; built afresh, uncached, when
    the key is None or the function cannot be weakly referenced."""
    try:
        ref = weakref.ref(user_fn)
        per_function = _CACHE.setdefault(user_fn, {})
    except TypeError:  # no weak references to it (or an unhashable callable)
        strong = lambda: user_fn  # noqa: E731
        return Programs(build(strong), strong)
    if key is None:
        return Programs(build(ref), ref)
    try:
        programs = per_function.get(key)
    except TypeError:  # a static leaf that cannot be hashed
        return Programs(build(ref), ref)
    if programs is None:
        programs = per_function[key] = Programs(build(ref), ref)
    return programs


class JaxFlat(Differentiable):
    """f: R^n -> R^m written in JAX on flat float64 vectors.

    Args:
        programs: the jitted programs of the flat function f(env, x) (see `Programs`).
        env: its first argument: the arrays that are not checked, or () for none.
        x0, inputs, outputs, eps, notes, positions: as in `Differentiable`.
    """

    framework: ClassVar[str] = "jax"

    def __init__(
        self,
        programs: Programs,
        x0: np.ndarray,
        inputs: tuple[Leaf, ...],
        outputs: tuple[Leaf, ...],
        *,
        eps: float,
        env: Any = (),
        notes: tuple[str, ...] = (),
        positions: tuple[int, ...] | None = None,
    ) -> None:
        import jax  # deferred: see the adapters/__init__.py docstring

        super().__init__(x0, inputs, outputs, eps=eps, notes=notes, positions=positions)
        self._jax = jax
        self._programs, self._env = programs, env
        self._jit_ok = True
        self._batching = Batching(self, "jax.vmap")

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
        # replace: a leaf of finite entries keeps naming them where they sit
        outputs = tuple(
            replace(leaf, name=f"grad {leaf.name}", dtype="float64") for leaf in self.inputs
        )
        return JaxFlat(
            self._programs.gradient(),
            self.x0,
            self.inputs,
            outputs,
            eps=self.eps,
            env=(self._env, cotangent),
            notes=self.notes,
        )

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
                        jitted = self._programs.jitted[kind]
                        return np.asarray(jitted(self._env, *arrays), dtype=np.float64)
                    except Exception as exc:
                        if _one_mode_only(exc):
                            raise
                        result = np.asarray(
                            self._programs.single[kind](self._env, *arrays), dtype=np.float64
                        )
                        self._jit_ok = False  # only once the eager call has worked
                        self._note(f"evaluated without jax.jit, which failed: {first_line(exc)}")
                        return result
                return np.asarray(self._programs.single[kind](self._env, *arrays), dtype=np.float64)
            except Exception as exc:
                raise_if_one_mode_only(exc)
                raise

    def _vmapped(
        self, kind: str, fixed: tuple[np.ndarray, ...], rows: np.ndarray, width: int
    ) -> np.ndarray:
        jnp = self._jax.numpy
        cap = _power_of_two_below(rows_per_chunk(rows.shape[1] + width))
        least = small_batch_rows(8 * (rows.shape[1] + width), self._shared_bytes, cap)
        parts = []
        try:
            with self._jax.enable_x64(True):
                args = [jnp.asarray(a, dtype=jnp.float64) for a in fixed]
                for start in range(0, len(rows), cap):
                    chunk = rows[start : start + cap]
                    size = min(cap, max(least, 1 << (len(chunk) - 1).bit_length()))
                    # device_put: faster than asarray
                    padded = self._jax.device_put(pad_rows(chunk, size))
                    out = self._programs.batched[kind](self._env, *args, padded)
                    parts.append(np.asarray(out, dtype=np.float64)[: len(chunk)])
        except Exception as exc:
            raise_if_one_mode_only(exc)
            raise
        return np.concatenate(parts).reshape(len(rows), width)

    @cached_property
    def _shared_bytes(self) -> int:
        """What every row reads besides its own (env and x0 are fixed for this map)."""
        return self._programs.shared_bytes(self._env, self.x0)

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes = (*self.notes, text)


def _power_of_two_below(k: int) -> int:
    return 1 << (k.bit_length() - 1)


def small_batch_rows(row_bytes: int, shared_bytes: int, cap: int) -> int:
    """The rows a small batch is padded to (a power of two): MIN_ROWS, fewer where the rows
    themselves exceed SMALL_BYTES or what they read beside them exceeds SMALL_READS, and
    never more than `cap`, the chunk size."""
    by_rows = _power_of_two_below(max(1, SMALL_BYTES // row_bytes))
    by_reads = _power_of_two_below(max(1, SMALL_READS // max(1, shared_bytes + row_bytes)))
    return min(cap, MIN_ROWS, by_rows, by_reads)


def _is_forward_of_custom_vjp(exc: BaseException) -> bool:
    return isinstance(exc, TypeError) and "custom_vjp" in str(exc) and "jvp" in str(exc)


def _is_reverse_undefined(exc: BaseException) -> bool:
    """JAX cannot transpose the code: `lax.while_loop`, `fori_loop` with dynamic bounds."""
    return isinstance(exc, ValueError) and "Reverse-mode differentiation does not work" in str(exc)


def _one_mode_only(exc: BaseException) -> bool:
    """The code is differentiable in one mode only: not a failure to trace or to vectorise."""
    return _is_forward_of_custom_vjp(exc) or _is_reverse_undefined(exc)


def raise_if_one_mode_only(exc: BaseException) -> None:
    """`Unsupported` with the reason, for a mode JAX cannot differentiate this code in (the
    checker then checks the other mode only, with a note)."""
    if _is_forward_of_custom_vjp(exc):
        raise Unsupported(FORWARD_OF_CUSTOM_VJP) from exc
    if _is_reverse_undefined(exc):
        reason = first_line(exc).split(" Try ")[0]
        raise Unsupported(REVERSE_UNDEFINED.format(reason=reason)) from exc
