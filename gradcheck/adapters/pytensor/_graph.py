"""The user's PyTensor code as one graph of a flat float64 vector, and the conversion hooks.

Two kinds of user code are accepted. A Python function that builds a graph: it is called once
with symbolic tensors of the inputs' shapes and dtypes (float inputs as float64, the check's
precision) and returns a symbolic output, a tuple/list/dict of them, or Python numbers. A
compiled `pytensor.function`: its own input variables and output graphs are reused
(unoptimised, as the user wrote them) and recompiled in the mode it was compiled with.

Either way the checked inputs' symbols are then replaced by slices of one flat float64 vector
and every other array by a constant copy of its value, giving the graph `PytensorFlat` runs.
Building happens under `pytensor.config.change_flags(floatX="float64")`, a scoped change:
symbols the user's code creates itself (`pt.vector()`, `pt.zeros(...)`) come out in float64
during the check, and the user's `floatX` is restored afterwards, also after an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..._differentiable import Leaf, leaves_of
from ..._errors import UsageError
from .._common import describe, first_line, flatten, input_leaves, part, unflatten
from ._flat import PytensorFlat, compile_copy, quiet_jit


def is_array(obj: object) -> bool:
    """A NumPy array or scalar: the numbers a PyTensor graph is evaluated on."""
    return isinstance(obj, (np.ndarray, np.generic))


def is_value(obj: object) -> bool:
    """A numerical input the graph gets a symbol for: NumPy arrays and scalars, Python floats."""
    return is_array(obj) or isinstance(obj, float)


def _is_variable(obj: object) -> bool:
    from pytensor.graph.basic import Variable

    return isinstance(obj, Variable)


def _promoted(arr: np.ndarray) -> str:
    """The dtype of an input during the check: float64 for every float, others as they are."""
    return "float64" if np.issubdtype(arr.dtype, np.floating) else str(arr.dtype)


def _own(arr: np.ndarray) -> str:
    """The dtype of an input in the user's own program."""
    return str(arr.dtype)


def _symbols(args: Sequence[Any], dtype: Callable[[np.ndarray], str]) -> list[Any]:
    """A symbolic tensor per numerical argument (None for others), with its static shape."""
    import pytensor.tensor as pt

    return [
        pt.tensor(f"input[{i}]", dtype=dtype(np.asarray(a)), shape=np.shape(a))
        if is_value(a)
        else None
        for i, a in enumerate(args)
    ]


def _rebuild(outputs: list[Any], replace: dict[Any, Any]) -> list[Any]:
    """`outputs` with the variables of `replace` substituted (types may change dtype)."""
    from pytensor.graph.replace import graph_replace, vectorize_graph

    if all(old.type.dtype == new.type.dtype for old, new in replace.items()):
        return list(graph_replace(outputs, replace, strict=False))
    return list(vectorize_graph(outputs, replace))  # rebuilds every node for the new dtypes


class PytensorFunction(PytensorFlat):
    """fn(*inputs, **kwargs) of PyTensor symbols (or a compiled function), of `wrt` inputs."""

    def __init__(
        self,
        fn: Callable[..., Any],
        args: Sequence[Any],
        kwargs: dict[str, Any],
        positions: tuple[int, ...],
    ) -> None:
        import pytensor.tensor as pt
        from pytensor.compile.executor import Function
        from pytensor.configdefaults import config
        from pytensor.tensor.basic import join

        self._user_fn, self._args, self._kwargs = fn, tuple(args), kwargs
        self._compiled = isinstance(fn, Function)
        inputs, x0 = input_leaves(args, positions, np.asarray)
        notes = [
            f"input[{i}] ({describe(a)}) is a constant of the graph, not differentiated"
            for i, a in enumerate(args)
            if i not in positions and is_value(a)
        ]
        with config.change_flags(floatX="float64"):
            if self._compiled:
                variables, template, mode = self._compiled_graph(fn, args, kwargs, notes)
            else:
                variables = _symbols(args, _promoted)
                call = [a if v is None else v for a, v in zip(args, variables, strict=True)]
                template, mode = fn(*call, **kwargs), None
            names, graphs = self._output_graphs(template)
            x = pt.tensor("x", dtype="float64", shape=(len(x0),))
            rebuilt = self._substitute(x, inputs, positions, variables, graphs)
            outputs, eps = self._output_leaves(x, x0, names, rebuilt)
            notes += [self._fixed_dtype(leaf) for leaf in outputs if leaf.dtype != "float64"]
            flat: list[Any] = [pt.cast(g, "float64") for g in rebuilt]
            concatenate: Any = join  # (untyped in PyTensor)
            y = concatenate(0, *[g.flatten() for g in flat])
        self._variables, self._graphs, self._template = variables, graphs, template
        super().__init__(
            x, y, x0, inputs, outputs, eps=eps, notes=tuple(notes), mode=mode, positions=positions
        )

    def _substitute(
        self,
        x: Any,
        inputs: tuple[Leaf, ...],
        positions: tuple[int, ...],
        variables: list[Any],
        graphs: list[Any],
    ) -> list[Any]:
        """The output graphs with the checked inputs' symbols replaced by slices of x and
        every other array's by a constant float64 (or integer) copy of its value."""
        import pytensor.tensor as pt
        from pytensor.tensor.shape import specify_shape

        replace = {}
        for i, var in enumerate(variables):
            if var is None:
                continue
            if i in positions:
                leaf = inputs[positions.index(i)]
                replace[var] = specify_shape(part(x, leaf), leaf.shape)
            else:
                value = np.array(self._args[i], dtype=_promoted(np.asarray(self._args[i])))
                replace[var] = pt.constant(value)
        try:
            return _rebuild(graphs, replace)
        except Exception as exc:
            if not self._compiled:
                raise
            raise UsageError(
                f"the compiled function's graph cannot be rebuilt in float64 "
                f"({first_line(exc)}); pass the Python function that builds it instead"
            ) from exc

    def _fixed_dtype(self, leaf: Leaf) -> str:
        """The note for an output an Op of the graph computes below float64."""
        advice = "; pass the Python function that builds the graph to check it in float64"
        return (
            f"{leaf.name} is {leaf.dtype} even on float64 inputs (an Op of the graph fixes its "
            f"dtype, e.g. a cast or a reduction built for {leaf.dtype}): checked at "
            f"{leaf.dtype} round-off" + (advice if self._compiled else "")
        )

    def _compiled_graph(
        self, fn: Any, args: Sequence[Any], kwargs: dict[str, Any], notes: list[str]
    ) -> tuple[list[Any], Any, Any]:
        """The input variables, the outputs (as fn returns them) and mode of a compiled function."""
        if kwargs:
            raise UsageError(
                "keyword arguments cannot be passed to a compiled pytensor.function here: "
                "pass its inputs positionally"
            )
        explicit = [i for i in fn.maker.inputs if not i.implicit]
        if len(explicit) != len(args):
            raise UsageError(
                f"the compiled function takes {len(explicit)} inputs, but {len(args)} were given"
            )
        for i, (spec, arg) in enumerate(zip(explicit, args, strict=True)):
            ndim = getattr(spec.variable.type, "ndim", None)
            if not is_value(arg) or np.ndim(arg) != ndim:
                raise UsageError(
                    f"input[{i}] is {describe(arg)}, but the compiled function's input "
                    f"{spec.variable} is {spec.variable.type}"
                )
            if spec.update is not None:
                notes.append(f"the update of input[{i}] is not applied during the check")
        graphs = [out.variable for out in fn.maker.outputs]
        template = graphs[0] if fn.unpack_single and len(graphs) == 1 else graphs
        return [spec.variable for spec in explicit], template, fn.maker.mode

    @staticmethod
    def _output_graphs(template: Any) -> tuple[list[str], list[Any]]:
        """The names and graphs of the leaves of fn's result (Python numbers as constants)."""
        import pytensor.tensor as pt

        named = flatten(template, "output", _is_variable)
        return [name for name, _ in named], [pt.as_tensor_variable(value) for _, value in named]

    @staticmethod
    def _output_leaves(
        x: Any, x0: np.ndarray, names: list[str], graphs: list[Any]
    ) -> tuple[tuple[Leaf, ...], float]:
        """Output leaves (their shapes from static types, or from one evaluation) and eps."""

        static: list[tuple[int | None, ...]] = []
        eps = float(np.finfo(np.float64).eps)
        for name, graph in zip(names, graphs, strict=True):
            dtype = np.dtype(graph.type.dtype)
            if np.issubdtype(dtype, np.complexfloating):
                raise UsageError(f"{name} is complex ({dtype}): only real outputs are checked")
            if not np.issubdtype(dtype, np.floating):
                raise UsageError(
                    f"{name} is a {dtype} tensor: a differentiable output must be floating point"
                )
            eps = max(eps, float(np.finfo(dtype).eps))
            static.append(tuple(graph.type.shape))
        if all(None not in shape for shape in static):
            shapes = [tuple(int(s) for s in shape if s is not None) for shape in static]
        else:  # shapes the graph only knows once it runs (Python mode: nothing to JIT)
            measure = compile_copy([x], [g.shape for g in graphs], "FAST_COMPILE")
            shapes = [tuple(int(s) for s in shape) for shape in measure(x0)]
        leaves = leaves_of(
            [(n, s, str(g.type.dtype)) for n, s, g in zip(names, shapes, graphs, strict=True)]
        )
        return leaves, eps

    def native_inputs(self, x: np.ndarray) -> tuple[Any, ...]:
        """All positional arguments as NumPy values (what a compiled pytensor.function takes),
        the checked ones float64 copies from x."""
        args = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in self._args]
        for leaf, position in zip(self.inputs, self.positions, strict=True):
            chunk = part(x, leaf).copy()
            args[position] = float(chunk) if isinstance(self._args[position], float) else chunk
        return tuple(args)

    def native_outputs(self, flat: np.ndarray) -> Any:
        """A flat output-sized vector as NumPy arrays in the structure of fn's output."""
        parts = [part(flat, leaf) for leaf in self.outputs]
        return unflatten(self._template, parts, _is_variable)

    def native_tangents(self, flat: np.ndarray) -> tuple[Any, ...]:
        """A flat input-sized vector as one NumPy array per checked input."""
        return tuple(part(flat, leaf) for leaf in self.inputs)

    def native_vjp(self, u: np.ndarray) -> np.ndarray | None:
        """J(x0)ᵀu computed by the user's graph in their own dtypes and floatX; None when
        every checked input is float64."""
        if all(leaf.dtype == "float64" for leaf in self.inputs):
            return None
        try:
            compiled, feeds = self._native_pullback(u)
            with quiet_jit():
                values = compiled(*feeds)
        except Exception as exc:  # fn ran on float64 copies: this failure is the dtype's
            self._note(
                "dtype audit skipped: the graph cannot be differentiated in the user's dtypes "
                f"({first_line(exc)})"
            )
            return None
        return np.concatenate([np.asarray(g, dtype=np.float64).ravel() for g in values])

    def _native_pullback(self, u: np.ndarray) -> tuple[Any, list[Any]]:
        """The user's graph in their own dtypes and floatX, its pullback of u compiled, and
        the arguments to call it with."""
        import pytensor.tensor as pt
        from pytensor.gradient import pullback

        if self._compiled:
            variables, graphs = self._variables, self._graphs
        else:  # built again, as the user's program builds it: their dtypes, their floatX
            variables = _symbols(self._args, _own)
            call = [a if v is None else v for a, v in zip(self._args, variables, strict=True)]
            graphs = self._output_graphs(self._user_fn(*call, **self._kwargs))[1]
        cotangents = [
            pt.constant(part(u, o).astype(g.type.dtype))
            for o, g in zip(self.outputs, graphs, strict=True)
        ]
        checked = [variables[p] for p in self.positions]
        grads: Any = pullback(graphs, checked, cotangents, disconnected_inputs="ignore")
        feeds = [v for v in variables if v is not None]
        compiled = compile_copy(feeds, list(grads), self._mode)  # the user's graph untouched
        return compiled, [a for a, v in zip(self._args, variables, strict=True) if v is not None]
