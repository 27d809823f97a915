"""PyTensor (Theano's maintained successor): graphs checked through pullback and pushforward.

`gc.check(build, *numpy_inputs, framework="pytensor")` calls `build` with symbolic tensors of
the inputs' shapes and dtypes and checks the graph it returns; a compiled `pytensor.function`
is recognised by itself. Derivatives come from PyTensor's own rules, `OpFromGraph` overrides
(`pullback=`, `pushforward=`, and the deprecated `lop_overrides=`/`rop_overrides=`) included,
so a declared `surrogate=` tells an override that runs from one that is silently bypassed.

The graph is compiled once per kind of evaluation with the user's own mode and linker (numba
by default in PyTensor 3; the Python linker of `mode="FAST_COMPILE"` needs no C compiler);
the report notes which. See `_graph.py` for how the graph is built and `_flat.py` for how it is
differentiated, batched and compiled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from ..._differentiable import Differentiable
from ..._errors import UsageError
from .._common import Adapter, Wrt, positions_to_check
from ._flat import PytensorFlat
from ._graph import PytensorFunction, is_array

__all__ = ["PytensorAdapter", "PytensorFlat"]


class PytensorAdapter(Adapter):
    """Python functions that build PyTensor graphs, and compiled `pytensor.function`s.

    Example:
        >>> import numpy as np, pytensor.tensor as pt, gradcheck as gc
        >>> x = np.array([0.3, -1.2])
        >>> gc.check(lambda x: pt.sum(pt.tanh(x) ** 2), x, framework="pytensor").verdict
        'pass'
    """

    framework: ClassVar[str] = "pytensor"

    def __init__(self) -> None:
        # deferred on purpose; see the adapters/__init__.py docstring
        from pytensor.compile.executor import Function
        from pytensor.graph.basic import Variable

        self._function, self._variable = Function, Variable

    def handles(self, obj: object) -> bool:
        """Compiled functions; symbolic variables too, so that passing one as an input gets
        a clear error from `bind` instead of "unknown framework"."""
        return isinstance(obj, (self._function, self._variable))

    def bind(
        self, fn: Callable[..., Any], inputs: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
    ) -> Differentiable:
        for i, arg in enumerate(inputs):
            if isinstance(arg, self._variable):
                raise UsageError(
                    f"input[{i}] is a symbolic PyTensor variable ({arg.type}): pass its value "
                    "as a NumPy array; gradcheck builds the symbolic inputs itself"
                )
        if not callable(fn):
            raise UsageError(
                f"fn is a {type(fn).__name__}: pass a function that builds a PyTensor graph "
                "from symbolic inputs, or a compiled pytensor.function"
            )
        positions = positions_to_check(inputs, wrt, is_array)
        return PytensorFunction(fn, inputs, kwargs, positions)
