"""JAX: functions of arrays and pytrees, differentiated with jax.vjp / jax.jvp; Keras 3 layers
and models when Keras runs on the JAX backend (`_keras`).

`_pytree.JaxFunction` maps the user's pytrees to one flat float64 vector (and back, for
user-supplied derivatives); `_flat.JaxFlat` runs the flat function with jit, vmap and their
fallbacks, all inside a scoped `jax.enable_x64(True)`: the user's global x64 flag, float32
program and jit caches are never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from ..._differentiable import Differentiable
from .._common import Adapter, Wrt, describe, select_positions
from .._keras import is_keras_layer
from ._flat import JaxFlat
from ._keras import bind_keras
from ._pytree import COMPLEX, FLOAT, JaxFunction, kind_of

__all__ = ["JaxAdapter", "JaxFlat"]


class JaxAdapter(Adapter):
    """JAX arrays and pytrees of them (complex ones as real and imaginary parts); jitted
    functions, custom_vjp/custom_jvp rules."""

    framework: ClassVar[str] = "jax"

    def __init__(self) -> None:
        import jax  # deferred on purpose; see the adapters/__init__.py docstring

        self._jax = jax

    def handles(self, obj: object) -> bool:
        if type(obj).__module__.split(".")[0] in ("jax", "jaxlib") or is_keras_layer(obj, "jax"):
            return True
        try:
            leaves = self._jax.tree_util.tree_leaves(obj)
        except Exception:  # an object pytree flattening rejects is not ours
            return False
        return any(isinstance(leaf, self._jax.Array) for leaf in leaves)

    def bind(
        self, fn: Callable[..., Any], inputs: Sequence[Any], kwargs: dict[str, Any], wrt: Wrt
    ) -> Differentiable:
        jax = self._jax
        if is_keras_layer(fn, "jax"):
            return bind_keras(jax, fn, inputs, kwargs, wrt)
        floats, kinds = [], []
        for arg in inputs:
            pairs, treedef = jax.tree_util.tree_flatten_with_path(arg)
            leaf_kinds = [kind_of(jax, leaf, treedef.num_nodes == 1) for _, leaf in pairs]
            floats.append(FLOAT in leaf_kinds or COMPLEX in leaf_kinds)
            if treedef.num_nodes == 1:
                kinds.append(describe(arg))
            else:
                types = sorted({describe(leaf).split(" ")[0] for _, leaf in pairs}) or ["nothing"]
                kinds.append(
                    f"a {type(arg).__name__} pytree without float leaves ({', '.join(types)})"
                )
        positions = select_positions(wrt, floats, kinds)
        return JaxFunction(jax, fn, inputs, kwargs, positions)
