"""The finite-difference engine: stencils, the adaptive ladder, estimates, measured noise.

It works on float64 NumPy only and knows nothing of frameworks or verdicts: the checker hands
it a `Differentiable` (or a plain batched function) and gets derivative estimates with error
bars back. `derivative` is the engine on its own, for users.
"""

from .average import averaged
from .derivative import Derivative, derivative
from .estimate import chunk_size, directional, fixed_step, opening_points, thorough
from .ladder import (
    HIDDEN_UNIT,
    Coordinates,
    Directions,
    Estimates,
    estimate,
    exact_directions,
    finite_size,
    round_off,
    sizes,
    start_steps,
)
from .noise import NOISE_SIGMAS, NoiseLook, measure_noise, noise_look
from .policy import DEFAULT, LARGEST_START, OFF_GRID, THOROUGH, Ladder
from .stencils import FiniteDifference, backward, central, forward

__all__ = [
    "DEFAULT",
    "HIDDEN_UNIT",
    "LARGEST_START",
    "NOISE_SIGMAS",
    "OFF_GRID",
    "THOROUGH",
    "Coordinates",
    "Derivative",
    "Directions",
    "Estimates",
    "FiniteDifference",
    "Ladder",
    "NoiseLook",
    "averaged",
    "backward",
    "central",
    "chunk_size",
    "derivative",
    "directional",
    "estimate",
    "exact_directions",
    "finite_size",
    "fixed_step",
    "forward",
    "measure_noise",
    "noise_look",
    "opening_points",
    "round_off",
    "sizes",
    "start_steps",
    "thorough",
]
