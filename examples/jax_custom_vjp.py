"""A `jax.custom_vjp` that keeps the gradient of a norm finite at zero, checked against numbers.

The story: the gradient of ‖x‖ = sqrt(Σx²) is x/‖x‖, which JAX's autodiff turns into NaN at
x = 0 (0/0), poisoning a whole training step. The usual fix is a custom VJP that returns 0
there and x/‖x‖ elsewhere. Is the hand-written rule right away from zero, and is it wired up
(fwd saves the norm, bwd multiplies by the incoming cotangent)? `gradcheck audit` runs the
declared case, and also finds `safe_norm` on its own (a custom_vjp) and checks it at
synthesised inputs. `examples/buggy/jax_custom_vjp.py` has a bwd that ignores its cotangent.
"""

import jax.numpy as jnp
import numpy as np
from jax import custom_vjp

import gradcheck


@custom_vjp
def safe_norm(x):
    """‖x‖, with a gradient of 0 instead of NaN at x = 0."""
    return jnp.sqrt(jnp.sum(x * x))


def _safe_norm_fwd(x):
    norm = jnp.sqrt(jnp.sum(x * x))
    return norm, (x, norm)


def _safe_norm_bwd(saved, cotangent):
    x, norm = saved
    safe = jnp.where(norm > 0, norm, 1.0)
    return (cotangent * jnp.where(norm > 0, x / safe, 0.0),)


safe_norm.defvjp(_safe_norm_fwd, _safe_norm_bwd)


@gradcheck.case(np.array([0.3, -1.2, 2.0]), framework="jax")
def distance_loss(x):
    """A loss on the norm of a displacement, through the custom VJP."""
    return 0.5 * safe_norm(x) ** 2 + safe_norm(x)
