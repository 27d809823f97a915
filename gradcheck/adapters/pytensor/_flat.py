"""A PyTensor graph y(x) of one flat float64 vector, compiled once per kind of evaluation.

`_graph.py` turns the user's function (or compiled `pytensor.function`) into one symbolic graph
from a flat input vector `x` (n,) to a flat output `y` (m,); this module makes that graph a
`Differentiable`. Derivatives are graphs too: reverse mode is `pytensor.gradient.pullback`
(what `grad` and the deprecated `Lop` call), forward mode is `pushforward` through each Op's
own rule (`use_op_pushforward=True`, the old `Rop`), and `gradient_map` is the pullback graph as
a function of x, so its own pullback and pushforward are Hessian-vector products.

Note: Batches and compilation
    Each kind (value, vjp, jvp) is compiled once, batched: `vectorize_graph` replaces x (or the
    cotangent u, or the tangent v) by a matrix with a batch dimension of unknown length, so one
    compiled function serves every batch and single calls are batches of one row. Where a
    graph cannot be vectorised (an Op without a batched form) or the batched function fails,
    that kind falls back to a compiled single-row function called in a loop, with a note; a
    user error raised by the single-row call propagates unchanged. Compilation uses the
    user's own mode (`pytensor.config.mode`, or the mode a compiled function was built with),
    so the check runs the rewrites and linker their program runs; a note names them.

Note: Padding
    Every batch is padded (repeating its last row) to a power of two rows, at least MIN_ROWS:
    BLAS picks its kernel by the shape of the matrices, so one row computed in a batch of one
    and in a batch of two can differ in the last bit (2.8e-17 for a 3x5 `dot`, measured),
    which the checker's repeated evaluations would call nondeterministic. Padded, single
    calls and the small batches of a check run the same shapes. MIN_ROWS is small because
    PyTensor's Python mode evaluates some Elemwise Ops element by element (a 150-input
    Hessian check: 7.3 s padded to 16 rows, 8.9 s padded to 256).

Note: Forward mode and overrides
    PyTensor's default `pushforward` transposes the pullback twice (Towns' trick), so it is
    the reverse-mode rule again, not an independent route, and for a pullback override that
    is not linear in its cotangent (guided backprop) it returns nonsense. The adapter asks
    every Op for its own pushforward instead; an Op without one makes forward mode
    unsupported (with its name), and so does an `OpFromGraph` whose pullback is overridden
    without a `pushforward=`: its pushforward differentiates the inner graph and would
    silently bypass the override.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from ..._differentiable import Differentiable, Leaf, Unsupported
from .._common import Batching, BatchKind, check_output_size, first_line, pad_rows, rows_per_chunk

# Batches are padded to MIN_ROWS rows at least (within SMALL_BYTES): Note: Padding.
MIN_ROWS, SMALL_BYTES = 16, 4 * 2**20
_BATCH: dict[str, BatchKind] = {"value": "values", "vjp": "batched VJPs", "jvp": "batched JVPs"}


def bypassed_override(outputs: list[Any]) -> str | None:
    """The name of an OpFromGraph in the graph of `outputs` (inner graphs included) whose
    pullback is overridden but whose pushforward is not, or None.

    Note: Forward mode and overrides, in the module docstring, says why that matters.
    """
    from pytensor.compile.builders import OpFromGraph
    from pytensor.graph.traversal import apply_ancestors

    pending, seen = list(outputs), set[int]()
    while pending:
        roots = [var for var in pending if id(var) not in seen]
        seen.update(id(var) for var in roots)
        pending = []
        for node in apply_ancestors(roots):
            op = node.op
            if isinstance(op, OpFromGraph):
                if op.pullback_overrides is not None and op.pushforward_overrides is None:
                    return str(op.name or type(op).__name__)
                pending.extend(op.inner_outputs)
    return None


def linker_note(compiled: Any, mode: Any) -> str:
    """Which PyTensor mode and linker evaluated the check, e.g. for a machine without g++."""
    from pytensor.configdefaults import config

    linker = compiled.maker.linker
    kind = type(linker).__name__.removesuffix("Linker") or type(linker).__name__
    if kind == "Numba":
        kind = "numba (LLVM JIT; no C compiler needed)"
    elif kind in ("VM", "Perform") and not getattr(linker, "c_thunks", False):
        kind = "Python VM (each Op's NumPy perform; no C compiler needed)"
    elif kind in ("VM", "C"):
        kind = f"C ({config.cxx})"
    if mode is None:
        mode = config.mode
    if not isinstance(mode, str):
        name = "the compiled function's own mode"
    elif mode == "Mode":
        name = "PyTensor's default mode"
    else:
        name = f"mode {mode!r}"
    return f"compiled by pytensor.function in {name}, {kind} linker"


@contextmanager
def quiet_jit() -> Iterator[None]:
    """Numba's performance advice, silenced while gradcheck's own graphs compile and run.

    The first call of a graph JIT-compiles it, and numba warns about the batched, padded
    graphs gradcheck built ("np.dot() is faster on contiguous arrays"): advice about code
    that is not the user's, and an error that ends the check under `-W error`.
    """
    with warnings.catch_warnings():
        if "numba" in sys.modules:  # (numba has no type information: read it as a module)
            errors = importlib.import_module("numba.core.errors")
            warnings.simplefilter("ignore", errors.NumbaPerformanceWarning)
        yield


def compile_copy(
    inputs: list[Any], output: Any, mode: Any, batch: tuple[Any, Any] | None = None
) -> Callable[..., Any]:
    """`pytensor.function` of a copy of the graph of `output`, inner graphs included.

    Args:
        inputs: the variables the graph is a function of.
        output: its output (a variable or a list of them).
        mode: the PyTensor mode (None: the user's default).
        batch: (one of `inputs`, a matrix variable): compile the graph vectorised over the
            rows of that matrix instead (Note: Batches and compilation).

    Compiling rewrites the inner graph of a Scan in place (it fuses its Elemwise Ops into a
    Composite, which has no gradient), so a graph differentiated after it was compiled would
    fail; the graphs the adapter differentiates are therefore never compiled themselves, only
    copies with their inner graphs copied too (before vectorising: a batched Scan shares its
    inner graph).
    """
    from pytensor.compile.maker import function
    from pytensor.graph.basic import clone
    from pytensor.graph.replace import vectorize_graph

    outputs = output if isinstance(output, list) else [output]
    copied = clone(inputs, outputs, copy_inputs=False, clone_inner_graphs=True)[1]
    if batch is not None:
        one, rows = batch
        copied = vectorize_graph(copied, {one: rows})
        inputs = [rows if var is one else var for var in inputs]
    result = copied if isinstance(output, list) else copied[0]
    compiled: Callable[..., Any] = function(inputs, result, mode=mode, on_unused_input="ignore")
    return compiled


def _power_of_two_below(k: int) -> int:
    return 1 << (max(1, k).bit_length() - 1)


class PytensorFlat(Differentiable):
    """f: R^n -> R^m as a PyTensor graph `y` (m,) of a flat float64 vector `x` (n,).

    Args:
        x: the flat float64 input variable, with static shape (n,).
        y: the flat float64 output, a graph of x.
        x0, inputs, outputs, eps, notes: as in `Differentiable`.
        mode: the PyTensor compilation mode (None: the user's `pytensor.config.mode`).
        positions: as in `Differentiable`.
    """

    framework: ClassVar[str] = "pytensor"

    def __init__(
        self,
        x: Any,
        y: Any,
        x0: np.ndarray,
        inputs: tuple[Leaf, ...],
        outputs: tuple[Leaf, ...],
        *,
        eps: float,
        notes: tuple[str, ...] = (),
        mode: Any = None,
        positions: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__(x0, inputs, outputs, eps=eps, notes=notes, positions=positions)
        self._x, self._y, self._mode = x, y, mode
        self._batched: dict[str, Callable[..., Any]] = {}
        self._single: dict[str, Callable[..., Any]] = {}
        self._batching = Batching(self, "vectorize_graph")
        self._symbolic: dict[str, tuple[Any, Any] | Unsupported] = {}

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes = (*self.notes, text)

    def _compile(
        self, inputs: list[Any], output: Any, batch: tuple[Any, Any] | None = None
    ) -> Callable[..., Any]:
        from pytensor.configdefaults import config

        with config.change_flags(floatX="float64"):
            compiled = compile_copy(inputs, output, self._mode, batch)
        self._note(linker_note(compiled, self._mode))
        return compiled

    def _derivative(self, kind: str) -> tuple[Any, Any]:
        """(the symbolic vector the derivative is linear in, its graph) for "vjp" / "jvp"."""
        if kind not in self._symbolic:
            self._symbolic[kind] = self._build(kind)
        built = self._symbolic[kind]
        if isinstance(built, Unsupported):
            raise built
        return built

    def _build(self, kind: str) -> tuple[Any, Any] | Unsupported:
        import pytensor.tensor as pt
        from pytensor.configdefaults import config
        from pytensor.gradient import NullTypeGradError, pullback, pushforward

        with config.change_flags(floatX="float64"):
            if kind == "vjp":
                u = pt.tensor("u", dtype="float64", shape=(self.m,))
                try:
                    g = pullback(self._y, self._x, u, disconnected_inputs="ignore")
                except (NullTypeGradError, NotImplementedError) as why:
                    return Unsupported(f"PyTensor has no gradient here: {first_line(why)}")
                return u, g
            blocker = bypassed_override([self._y])
            if blocker is not None:
                return Unsupported(
                    f"it would bypass the pullback override of OpFromGraph {blocker!r} (without "
                    "pushforward= PyTensor differentiates its inner graph instead); give it "
                    "pushforward= to check forward mode"
                )
            v = pt.tensor("v", dtype="float64", shape=(self.n,))
            try:
                jv = pushforward(
                    self._y, self._x, v, disconnected_outputs="ignore", use_op_pushforward=True
                )
            except (NullTypeGradError, NotImplementedError) as why:
                return Unsupported(
                    f"{first_line(why)} (PyTensor's fallback pushforward transposes the "
                    "pullback twice: it would only repeat the reverse-mode check)"
                )
            return v, jv

    def _batched_function(self, kind: str) -> Callable[..., Any]:
        """`kind` compiled once for batches of any length (Note: Batches and compilation)."""
        if kind not in self._batched:
            import pytensor.tensor as pt

            if kind == "value":
                xs = pt.tensor("xs", dtype="float64", shape=(None, self.n))
                self._batched[kind] = self._compile([self._x], self._y, (self._x, xs))
            else:
                w, graph = self._derivative(kind)
                ws = pt.tensor(f"{w.name}s", dtype="float64", shape=(None, w.type.shape[0]))
                self._batched[kind] = self._compile([self._x, w], graph, (w, ws))
        return self._batched[kind]

    def _single_function(self, kind: str) -> Callable[..., Any]:
        """`kind` compiled for one row: the loop where the graph cannot be batched."""
        if kind not in self._single:
            if kind == "value":
                self._single[kind] = self._compile([self._x], self._y)
            else:
                w, graph = self._derivative(kind)
                self._single[kind] = self._compile([self._x, w], graph)
        return self._single[kind]

    def _run(self, kind: str, fixed: tuple[np.ndarray, ...], rows: np.ndarray) -> np.ndarray:
        """`kind` at each row of `rows`: vectorised until that fails, then in a loop."""
        rows = np.ascontiguousarray(rows, dtype=np.float64)
        args = [np.ascontiguousarray(a, dtype=np.float64) for a in fixed]
        width = self.n if kind == "vjp" else self.m

        def vectorised(batch: np.ndarray) -> np.ndarray:
            function = self._batched_function(kind)
            row_width = batch.shape[1] + width
            cap = _power_of_two_below(rows_per_chunk(row_width))
            least = min(cap, MIN_ROWS, _power_of_two_below(max(1, SMALL_BYTES // (8 * row_width))))
            parts = []
            for start in range(0, len(batch), cap):
                chunk = batch[start : start + cap]
                size = min(cap, max(least, 1 << (len(chunk) - 1).bit_length()))
                with quiet_jit():
                    out = np.asarray(function(*args, pad_rows(chunk, size)), dtype=np.float64)
                parts.append(out.reshape(size, -1)[: len(chunk)])
            return np.concatenate(parts)

        def one(row: np.ndarray) -> np.ndarray:
            with quiet_jit():
                out = np.asarray(self._single_function(kind)(*args, row), dtype=np.float64)
            return out.ravel()

        if kind != "value":
            self._derivative(kind)  # Unsupported before any compilation or fallback
        return self._batching.run(_BATCH[kind], rows, width, vectorised, one)

    def value(self, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = self._run("value", (), np.asarray(x)[None])[0]
        check_output_size(out.size, self.m)
        return out

    def values(self, xs: np.ndarray) -> np.ndarray:
        return self._run("value", (), xs)

    def vjp(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        row: np.ndarray = self._run("vjp", (x,), np.asarray(u)[None])[0]
        return row

    def jvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        row: np.ndarray = self._run("jvp", (x,), np.asarray(v)[None])[0]
        return row

    def vjps(self, x: np.ndarray, us: np.ndarray) -> np.ndarray:
        return self._run("vjp", (x,), us)

    def jvps(self, x: np.ndarray, vs: np.ndarray) -> np.ndarray:
        return self._run("jvp", (x,), vs)

    def gradient_map(self, u: np.ndarray) -> Differentiable:
        """x ↦ J(x)ᵀu as a graph of the same x: its pullback and pushforward are
        Hessian-vector products, and it nests to any order."""
        import pytensor.tensor as pt
        from pytensor.configdefaults import config
        from pytensor.graph.replace import graph_replace

        w, graph = self._derivative("vjp")
        with config.change_flags(floatX="float64"):
            cotangent = pt.constant(np.asarray(u, dtype=np.float64))
            pulled_back = graph_replace(graph, {w: cotangent})
        outputs = tuple(
            Leaf(f"grad {leaf.name}", leaf.shape, "float64", leaf.offset) for leaf in self.inputs
        )
        return PytensorFlat(
            self._x,
            pulled_back,
            self.x0,
            self.inputs,
            outputs,
            eps=self.eps,
            notes=self.notes,
            mode=self._mode,
            positions=self.positions,
        )
