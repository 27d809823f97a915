"""The TF-level function behind every TensorFlow Differentiable, and its derivatives.

`TensorflowFlat` turns `_call(xs) -> [tensor per output leaf]` into the flat float64 interface.
Reverse mode is one `GradientTape` with `unconnected_gradients=ZERO` (a `stop_gradient` cut
reads as 0, not None); the gradient map x -> J(x)^T u is a `TensorflowFlat` whose `_call` runs
its own tape, so an outer tape differentiates it again (Hessian-vector products, and any order
by nesting). See "Note: forward mode and tf.custom_gradient" for why forward mode is probed.

Note: forward mode and tf.custom_gradient
    `tf.autodiff.ForwardAccumulator` often differentiates the *forward* computation of a
    `tf.custom_gradient` function and ignores the custom rule, and not consistently (measured
    on TF 2.21: eagerly, y = x^3 with a rule returning 5·dy gives 3x^2, while a sign with a
    straight-through rule gives the rule's 1; inside a tf.function the same sign gives 0).
    Forward and reverse mode would then disagree by design, and a JVP check would test the
    forward code rather than the rule. So before the first JVP we compare <u, Jv> (forward)
    with <J^T u, v> (reverse) at x0 for one seeded u, v, and the first batched (graph) JVP
    with the eager one; when they disagree beyond rounding, forward mode raises `Unsupported`
    with the reason, and the checker skips the forward checks instead of failing them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..._differentiable import Differentiable, Leaf, Unsupported, leaves_of
from ..._errors import UsageError
from .._common import (
    Batching,
    BatchKind,
    first_line,
    flatten,
    loop,
    pad_rows,
    part,
    rows_per_chunk,
    unflatten,
)
from ._tensors import float_eps, is_leaf, tf_module

MAX_ROWS = 4096
VECTORISE_FROM = 32  # fewer rows run eagerly: tracing a tf.function costs more than it saves
BATCHES: dict[str, BatchKind] = {"value": "values", "vjp": "batched VJPs", "jvp": "batched JVPs"}


class _PforDiagnostics(logging.Filter):
    """Drops what pfor logs when it cannot vectorise an op: hundreds of ERROR lines (the graph
    and its creation stack) for a failure the adapter handles itself, with a one-line note,
    by evaluating in a loop."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "parallel_for" not in record.pathname


@contextlib.contextmanager
def quiet_pfor() -> Iterator[None]:
    """TF's logger without pfor's conversion diagnostics, for one vectorisation attempt."""
    logger, drop = logging.getLogger("tensorflow"), _PforDiagnostics()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


class TensorflowFlat(Differentiable):
    """A TF function of one tensor per input leaf, seen as f: R^n -> R^m in float64.

    Subclasses implement `_call(xs)` (list of output tensors) and, for the first evaluation,
    `_flat(result)` gives the output leaves their names.
    """

    framework = "tensorflow"

    def __init__(
        self,
        x0: np.ndarray,
        inputs: tuple[Leaf, ...],
        dtypes: Sequence[Any],
        notes: Sequence[str],
        *,
        outputs: tuple[Leaf, ...] | None = None,
        eps: float | None = None,
        positions: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__(
            x0,
            inputs,
            () if outputs is None else outputs,
            eps=eps or float(np.finfo(np.float64).eps),
            notes=tuple(notes),
            positions=positions,
        )
        self._dtypes = list(dtypes)
        self._template: Any = None
        self._names: list[str] | None = None
        self._forward: str | None = None  # "ok", or why forward mode is unavailable
        self._compiled: dict[str, Any] = {}
        # Keras wraps the real cause of a pfor failure after a header line: keep 3 lines.
        self._batching = Batching(self, "tf.vectorized_map", lines=3)
        if outputs is None:
            self._first_call()
        self._out_dtypes = [leaf.dtype for leaf in self.outputs]

    def _first_call(self) -> None:
        """Run the code at x0 once: its output leaves, and the round-off of their dtypes."""
        first = self._call(self._split(self.x0))
        assert self._names is not None
        triples = [
            (name, tuple(t.shape), t.dtype.name) for name, t in zip(self._names, first, strict=True)
        ]
        self.outputs = leaves_of(triples)
        low = sorted({d for _, _, d in triples if d != "float64"})
        if low and all(t.name == "float64" for t in self._dtypes):
            self.notes = (
                *self.notes,
                f"the outputs are {', '.join(low)} although the inputs were promoted "
                "to float64: the code computes in lower precision inside, which "
                "limits the numeric derivative",
            )
        self.eps = max(
            [float_eps(d) for _, _, d in triples] + [float_eps(t.name) for t in self._dtypes]
        )

    # -- the TF side -------------------------------------------------------------------------
    def _call(self, xs: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def _flat(self, result: Any) -> list[Any]:
        """fn's result as a list of floating tensors, in `flatten` order."""
        tf = tf_module()
        named = flatten(result, "output", is_leaf)
        if self._names is None:
            self._template, self._names = result, [name for name, _ in named]
        elif len(named) != len(self._names):
            raise UsageError("the function returned a different output structure at another point")
        out = []
        for name, value in named:
            tensor = tf.convert_to_tensor(value, dtype_hint=tf.float64)
            if tensor.dtype.is_complex:
                raise UsageError(
                    f"{name} is complex ({tensor.dtype.name}): only real outputs are checked"
                )
            if not tensor.dtype.is_floating:
                raise UsageError(
                    f"{name} is a {tensor.dtype.name} tensor: a differentiable output "
                    "must be floating point"
                )
            out.append(tensor)
        return out

    def _split(self, x: Any, *, dtypes: Sequence[Any] | None = None) -> list[Any]:
        """One tensor per input leaf from a flat vector (NumPy, or a TF tensor inside vmap)."""
        tf = tf_module()
        leaves, dtypes = self.inputs, dtypes or self._dtypes
        if isinstance(x, np.ndarray):  # one host-to-tensor copy per leaf, no extra eager ops
            return [
                tf.constant(part(x, leaf).astype(tf.as_dtype(dtype).as_numpy_dtype))
                for leaf, dtype in zip(leaves, dtypes, strict=True)
            ]
        return [
            tf.cast(tf.reshape(x[leaf.offset : leaf.offset + leaf.size], leaf.shape), dtype)
            for leaf, dtype in zip(leaves, dtypes, strict=True)
        ]

    def _cotangents(self, u: np.ndarray, dtypes: Sequence[Any] | None = None) -> list[Any]:
        """u as one tensor per output leaf, in the dtypes the outputs have."""
        tf = tf_module()
        return [
            tf.constant(part(u, leaf), dtype)
            for leaf, dtype in zip(self.outputs, dtypes or self._out_dtypes, strict=True)
        ]

    def _gradient(self, tape: Any, outs: list[Any], xs: list[Any], u: np.ndarray) -> np.ndarray:
        tf = tf_module()
        cotangents = self._cotangents(u, [o.dtype for o in outs])
        grads = tape.gradient(
            outs,
            xs,
            output_gradients=cotangents,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        return _concat(grads)

    def native_outputs(self, flat: np.ndarray) -> Any:
        """A flat output-sized vector as tensors in the structure of fn's result (cotangents)."""
        tf = tf_module()
        parts = [tf.constant(part(flat, leaf), dtype=tf.float64) for leaf in self.outputs]
        return unflatten(self._template, parts, is_leaf)

    def native_tangents(self, flat: np.ndarray) -> tuple[Any, ...]:
        """A flat input-sized vector as one float64 tensor per checked leaf (tangents)."""
        return tuple(self._split(flat, dtypes=[tf_module().float64] * len(self.inputs)))

    # -- the flat float64 interface ------------------------------------------------------------
    def value(self, x: np.ndarray) -> np.ndarray:
        return _concat(self._call(self._split(x)))

    def values(self, xs: np.ndarray) -> np.ndarray:
        return self._rows("value", self.x0, xs, self.m, self.value)

    def vjp(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        tf = tf_module()
        xs = self._split(x)
        with tf.GradientTape() as tape:
            tape.watch(xs)
            outs = self._call(xs)
        return self._gradient(tape, outs, xs, u)

    def vjps(self, x: np.ndarray, us: np.ndarray) -> np.ndarray:
        return self._rows("vjp", x, us, self.n, lambda u: self.vjp(x, u))

    def jvps(self, x: np.ndarray, vs: np.ndarray) -> np.ndarray:
        if self._forward is None:
            self._forward = self._probe_forward()
        if self._forward != "ok":
            raise Unsupported(self._forward)
        return self._rows("jvp", x, vs, self.m, lambda v: self._accumulate(x, v))

    # -- batches: tf.vectorized_map over rows, chunked, or a loop --------------------------------
    def _rows(
        self,
        kind: str,
        x: np.ndarray,
        rows: np.ndarray,
        width: int,
        one: Callable[[np.ndarray], np.ndarray],
    ) -> np.ndarray:
        """Each row through `kind` (value/vjp/jvp at x), vectorised where pfor can."""
        batch = BATCHES[kind]
        works = self._batching.works.get(batch)
        # Tracing costs more than a few eager calls: trace for a big batch, then reuse it.
        if (works and len(rows) > 1) or (works is None and len(rows) >= VECTORISE_FROM):

            def vectorised(block: np.ndarray) -> np.ndarray:
                with quiet_pfor():
                    result = self._vectorised_rows(kind, x, block)
                if works is None and kind == "jvp":
                    self._confirm_graph_forward(x, block[0], result[0], one(block[0]))
                return result

            return self._batching.run(batch, rows, width, vectorised, one)
        return loop(one, rows, width)

    def _confirm_graph_forward(
        self, x: np.ndarray, v: np.ndarray, graph: np.ndarray, eager: np.ndarray
    ) -> None:
        """Batched forward mode runs in a graph, where TF treats custom rules differently."""
        scale = float(np.abs(graph).sum() + np.abs(eager).sum())
        if all(
            _close(float(a), float(b), scale, self.eps) for a, b in zip(graph, eager, strict=True)
        ):
            return
        self._forward = (
            "forward mode: tf.autodiff.ForwardAccumulator gives different J·v "
            "eagerly and inside a tf.function (a tf.custom_gradient rule is followed "
            "in one and bypassed in the other), so forward-mode checks are skipped"
        )
        raise Unsupported(self._forward)

    def _row(self, kind: str, x: Any, r: Any) -> Any:
        """One row of a batch as TF ops: f(r), J(x)^T r or J(x) r, flattened to float64."""
        tf = tf_module()
        zero = tf.UnconnectedGradients.ZERO
        if kind == "value":
            outs = self._call(self._split(r))
        elif kind == "jvp":
            xs = self._split(x)
            with tf.autodiff.ForwardAccumulator(xs, self._split(r)) as acc:
                primal = self._call(xs)
            outs = [acc.jvp(o, unconnected_gradients=zero) for o in primal]
        else:
            xs = self._split(x)
            with tf.GradientTape() as tape:
                tape.watch(xs)
                primal = self._call(xs)
            cotangents = [
                tf.cast(tf.reshape(r[leaf.offset : leaf.offset + leaf.size], leaf.shape), o.dtype)
                for leaf, o in zip(self.outputs, primal, strict=True)
            ]
            outs = tape.gradient(
                primal, xs, output_gradients=cotangents, unconnected_gradients=zero
            )
        return tf.concat(
            [tf.reshape(tf.cast(tf.convert_to_tensor(t), tf.float64), [-1]) for t in outs], 0
        )

    def _vectorised_rows(self, kind: str, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        tf = tf_module()
        if kind not in self._compiled:

            def batch(point: Any, block: Any) -> Any:
                return tf.vectorized_map(
                    lambda r: self._row(kind, point, r), block, fallback_to_while_loop=False
                )

            compiled = tf.function(batch, autograph=False)  # no source parsing
            # Every check traces its own function on purpose; TF counts the traces by the code
            # of `batch` across checks and would warn users of "excessive retracing". The flag is
            # private and belongs to this one object; if TF drops it, the warning comes back.
            compiled._omit_frequent_tracing_warning = True
            self._compiled[kind] = compiled
        size = min(MAX_ROWS, rows_per_chunk(self.n + self.m))
        point = tf.constant(x, dtype=tf.float64)
        parts = []
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            # Padding to powers of two (at least VECTORISE_FROM) keeps the traces few.
            padded = min(size, max(VECTORISE_FROM, 1 << max(0, (len(chunk) - 1).bit_length())))
            out = self._compiled[kind](point, tf.constant(pad_rows(chunk, padded), tf.float64))
            parts.append(out.numpy()[: len(chunk)])
        return np.concatenate(parts)

    def jvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        if self._forward is None:
            self._forward = self._probe_forward()
        if self._forward != "ok":
            raise Unsupported(self._forward)
        return self._accumulate(x, v)

    def _accumulate(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        tf = tf_module()
        xs = self._split(x)
        tangents = self._split(v)
        try:
            with tf.autodiff.ForwardAccumulator(xs, tangents) as acc:
                outs = self._call(xs)
            return _concat(
                [acc.jvp(o, unconnected_gradients=tf.UnconnectedGradients.ZERO) for o in outs]
            )
        except Exception as error:
            self.value(x)  # the user's own exception, if it is one, propagates unchanged
            raise Unsupported(
                f"forward mode: tf.autodiff.ForwardAccumulator failed ({first_line(error, 3)})"
            ) from error

    def _probe_forward(self) -> str:
        """See "Note: forward mode and tf.custom_gradient"."""
        rng = np.random.default_rng(0)
        u, v = rng.standard_normal(self.m), rng.standard_normal(self.n)
        try:
            jv = self._accumulate(self.x0, v)
        except Unsupported as why:
            return str(why)
        jtu = self.vjp(self.x0, u)
        a, b = float(u @ jv), float(jtu @ v)
        if _close(a, b, float(np.abs(u) @ np.abs(jv) + np.abs(jtu) @ np.abs(v)), self.eps):
            return "ok"
        return (
            "forward mode: tf.autodiff.ForwardAccumulator does not follow the reverse-mode "
            "rule here (tf.custom_gradient rules have no forward rule, so it differentiates "
            f"their forward code instead): <u, Jv> = {a:.6g} but <J^T u, v> = {b:.6g} at the "
            "checked point, so forward-mode checks would not test your rule"
        )

    def gradient_map(self, u: np.ndarray) -> Differentiable:
        return _GradientMap(self, u)


class _GradientMap(TensorflowFlat):
    """x -> J(x)^T u of a parent map: its derivatives are Hessian-vector products."""

    def __init__(self, parent: TensorflowFlat, u: np.ndarray) -> None:
        self._parent, self._u = parent, np.asarray(u, dtype=np.float64)
        outputs = tuple(
            Leaf(f"d/d{leaf.name}", leaf.shape, "float64", leaf.offset) for leaf in parent.inputs
        )
        super().__init__(
            parent.x0, parent.inputs, parent._dtypes, (), outputs=outputs, eps=parent.eps
        )
        self._out_dtypes = [t.name for t in parent._dtypes]

    def _call(self, xs: Sequence[Any]) -> list[Any]:
        tf = tf_module()
        xs = list(xs)
        with tf.GradientTape() as tape:
            tape.watch(xs)
            outs = self._parent._call(xs)
        cotangents = self._parent._cotangents(self._u, [o.dtype for o in outs])
        grads = tape.gradient(
            outs,
            xs,
            output_gradients=cotangents,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        return [tf.convert_to_tensor(g) for g in grads]


def _close(a: float, b: float, scale: float, eps: float) -> bool:
    """Equal up to rounding: custom rules differ by O(1), float32 casts by ~1e-7 relative."""
    return abs(a - b) <= max(1e3 * eps, 1e-5) * scale or not np.isfinite(a - b)


def _concat(tensors: Sequence[Any]) -> np.ndarray:
    """Tensors (or IndexedSlices) as one flat float64 vector."""
    tf = tf_module()
    if not tensors:
        return np.empty(0)
    return np.concatenate(
        [np.asarray(tf.convert_to_tensor(t).numpy(), dtype=np.float64).ravel() for t in tensors]
    )
