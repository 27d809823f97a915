"""A `jax.custom_vjp` whose bwd ignores its incoming cotangent.

The story: the rule was first tested alone, as `grad(safe_norm)(x)`, where the cotangent is
exactly 1, so returning x/‖x‖ without multiplying by it looked right. Inside a loss the chain
rule breaks: ∂loss/∂x comes out as x/‖x‖ whatever ∂loss/∂‖x‖ is. `gradcheck audit
examples/buggy/jax_custom_vjp.py` catches it even on the norm alone: gradcheck scales the
cotangent on purpose, so a backward that ignores it is off by that factor.
"""

import jax.numpy as jnp
import numpy as np
from jax import custom_vjp

import gradcheck


@custom_vjp
def safe_norm(x):
    """‖x‖, with a custom VJP that forgets its cotangent."""
    return jnp.sqrt(jnp.sum(x * x))


def _safe_norm_fwd(x):
    norm = jnp.sqrt(jnp.sum(x * x))
    return norm, (x, norm)


def _safe_norm_bwd(saved, cotangent):
    x, norm = saved
    return (jnp.where(norm > 0, x / jnp.where(norm > 0, norm, 1.0), 0.0),)  # no `cotangent *`


safe_norm.defvjp(_safe_norm_fwd, _safe_norm_bwd)


@gradcheck.case(np.array([0.3, -1.2, 2.0]), framework="jax")
def distance_loss(x):
    """A loss on the norm of a displacement, through the custom VJP."""
    return 0.5 * safe_norm(x) ** 2 + safe_norm(x)
