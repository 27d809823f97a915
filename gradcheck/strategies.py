"""Hypothesis strategies for gradient checks: inputs at which a finite-difference check is fair.

A property test of a gradient needs points where the derivative exists and the finite
differences can see it: away from kinks, inside the function's domain, at matrices that are
not near-singular. Filtering random data for such points wastes examples and ends in
hypothesis' ``filter_too_much`` health check, so every strategy here *builds* its values
inside the promised set: floats are drawn from the allowed intervals themselves, matrices are
assembled from a chosen spectrum and random orthogonal factors.

Strategies produce NumPy arrays or, with ``framework=``, tensors of PyTorch, JAX or TensorFlow;
a framework is imported when a strategy for it is built, never by importing this module. This
module needs the ``hypothesis`` extra and is not imported by ``import gradcheck``.

Importing it registers the settings profile ``"gradcheck"`` (`PROFILE`): ``deadline=None``,
because the first check of a JAX or TensorFlow function traces and compiles it and takes many
times longer than the next, which hypothesis' default 200 ms deadline reports as flaky. Load
it with ``settings.load_profile("gradcheck")`` in a conftest, or ``pytest
--hypothesis-profile=gradcheck`` (the pytest plugin registers it in time).

Note: Kink margin
    gradcheck's first finite-difference step along a coordinate is at most 2^-7·|x_i| (and
    1e-3 of the typical entry for entries near zero), and its stencils reach one step out, so
    a point at least 2^-5·max(1, |k|) from a kink k keeps every sample of the first ladder on
    one side of it: the check measures the one-sided derivative the analytic side computes,
    not the jump. `KINK_MARGIN` is that 2^-5; pass ``margin=`` to move further away.

Example:
    >>> import numpy as np
    >>> from hypothesis import given, settings, HealthCheck
    >>> import gradcheck.strategies as gst
    >>> @settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
    ... @given(x=gst.arrays((3,), kinks=(0.0,)))
    ... def test_relu(gradcheck, x):
    ...     gradcheck(lambda x: np.sum(np.maximum(x, 0)), x, grad=lambda x: (x > 0) * 1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ._errors import UsageError

__all__ = [
    "KINK_MARGIN",
    "PROFILE",
    "arrays",
    "complex_arrays",
    "matrices",
    "spd_matrices",
]

Framework = Literal["numpy", "torch", "jax", "tensorflow"]
Domain = Literal["real", "positive", "unit"]
Shape = int | tuple[int, ...] | st.SearchStrategy[tuple[int, ...]]

KINK_MARGIN = 2.0**-5
"""Default distance from a kink, relative to max(1, |kink|) (Note: Kink margin)."""

PROFILE = "gradcheck"
settings.register_profile(PROFILE, deadline=None)

_FLOAT_WIDTHS = {"float16": 16, "float32": 32, "float64": 64}
_COMPLEX_WIDTHS = {"complex64": 64, "complex128": 128}


def arrays(
    shape: Shape,
    *,
    framework: Framework = "numpy",
    dtype: str | None = None,
    domain: Domain = "real",
    bound: float = 10.0,
    kinks: Sequence[float] = (),
    margin: float = KINK_MARGIN,
) -> st.SearchStrategy[Any]:
    """Float arrays of one framework whose entries all lie in a domain, away from kinks.

    Args:
        shape: the array's shape, or a strategy of shapes (``hypothesis.extra.numpy.
            array_shapes()``).
        framework: "numpy" (default), "torch", "jax" or "tensorflow".
        dtype: "float16", "float32" or "float64". None: float64, except for JAX without
            ``jax_enable_x64``, which only makes float32 arrays (gradcheck still checks in
            float64, on copies).
        domain: "real": [-bound, bound]; "positive": [margin, bound], for log, sqrt and
            powers; "unit": [margin, 1 - margin], for probabilities and logit.
        bound: the largest magnitude of an entry.
        kinks: points where the function is not differentiable (0 for relu and abs, the
            clip limits for clamp): every entry stays margin·max(1, |k|) away from each one.
        margin: the relative distance from kinks and domain edges (Note: Kink margin).

    Returns:
        A strategy of arrays (or tensors) of `shape` with entries in the allowed intervals.

    Raises:
        UsageError: an unknown framework, dtype or domain, or no room left between the kinks.

    Example:
        >>> gst.arrays((2, 3), framework="torch", domain="positive")  # doctest: +SKIP
    """
    width = _width(dtype, framework, _FLOAT_WIDTHS)
    low, high = {
        "real": (-bound, bound),
        "positive": (margin, bound),
        "unit": (margin, 1.0 - margin),
    }.get(domain, (np.nan, np.nan))
    if np.isnan(low):
        raise UsageError(f"domain must be 'real', 'positive' or 'unit', got {domain!r}")
    pieces = [
        st.floats(a, b, width=width, allow_subnormal=False)  # type: ignore[arg-type]
        for a, b in _intervals(low, high, kinks, margin, width)
    ]
    values = hnp.arrays(f"float{width}", shape, elements=st.one_of(pieces))
    return values.map(_converter(framework))


def complex_arrays(
    shape: Shape,
    *,
    framework: Framework = "numpy",
    dtype: str | None = None,
    bound: float = 10.0,
    min_magnitude: float = 0.0,
) -> st.SearchStrategy[Any]:
    """Complex arrays of one framework with every entry's magnitude in [min_magnitude, bound].

    Args:
        shape: the array's shape, or a strategy of shapes.
        framework: "numpy" (default), "torch", "jax" or "tensorflow".
        dtype: "complex64" or "complex128"; None: complex128 (complex64 for JAX without x64).
        bound: the largest magnitude of an entry.
        min_magnitude: the smallest magnitude: above 0 for abs, angle or 1/z, whose
            derivatives do not exist at 0.

    Returns:
        A strategy of complex arrays (or tensors) of `shape`.

    Raises:
        UsageError: an unknown framework or dtype, or min_magnitude > bound.
    """
    if dtype is None:
        dtype = "complex64" if _jax_float32(framework) else "complex128"
    width = _COMPLEX_WIDTHS.get(dtype)
    if width is None:
        raise UsageError(f"dtype must be one of {tuple(_COMPLEX_WIDTHS)}, got {dtype!r}")
    if not 0 <= min_magnitude <= bound:
        raise UsageError(f"need 0 <= min_magnitude <= bound, got {min_magnitude}, {bound}")
    elements = st.complex_numbers(
        min_magnitude=min_magnitude,
        max_magnitude=bound,
        allow_nan=False,
        allow_infinity=False,
        allow_subnormal=False,
        width=width,  # type: ignore[arg-type]
    )
    return hnp.arrays(dtype, shape, elements=elements).map(_converter(framework))


def matrices(
    n: int,
    *,
    condition: float = 10.0,
    scale: float = 1.0,
    framework: Framework = "numpy",
    dtype: str | None = None,
) -> st.SearchStrategy[Any]:
    """Square n×n matrices whose 2-norm condition number is `condition` (to rounding).

    Built as U·diag(s)·Vᵀ with U and V the orthogonal factors of QR decompositions of drawn
    matrices (Householder QR gives an orthogonal factor for any input, zeros included), and
    singular values from `scale` down to scale/condition, the ones between drawn on a log
    scale. Inverses, solves and determinants are then as well conditioned as promised.

    Args:
        n: the size, at least 1 (n = 1 needs condition = 1).
        condition: the ratio of the largest to the smallest singular value, at least 1.
        scale: the largest singular value.
        framework: "numpy" (default), "torch", "jax" or "tensorflow".
        dtype: "float32" or "float64"; None as for `arrays`.

    Returns:
        A strategy of matrices (or tensors).

    Raises:
        UsageError: n < 1, condition < 1 (or != 1 for n = 1), scale <= 0, a bad dtype.
    """
    spectrum = _spectrum(n, condition, scale)
    convert = _converter(framework)
    dtype = _float_dtype(dtype, framework)

    def build(usv: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Any:
        u, singular, v = usv
        return convert(((u * singular) @ v.T).astype(dtype))

    return st.tuples(_orthogonal(n), spectrum, _orthogonal(n)).map(build)


def spd_matrices(
    n: int,
    *,
    condition: float = 10.0,
    scale: float = 1.0,
    framework: Framework = "numpy",
    dtype: str | None = None,
) -> st.SearchStrategy[Any]:
    """Symmetric positive definite n×n matrices with eigenvalues from scale/condition to scale.

    Built as Q·diag(λ)·Qᵀ (Q orthogonal as in `matrices`), then symmetrised exactly, so
    Cholesky factorisations, inverses and log-determinants are defined with a known margin.

    Args:
        n: the size, at least 1 (n = 1 needs condition = 1).
        condition: the ratio of the largest to the smallest eigenvalue, at least 1.
        scale: the largest eigenvalue.
        framework: "numpy" (default), "torch", "jax" or "tensorflow".
        dtype: "float32" or "float64"; None as for `arrays`.

    Returns:
        A strategy of matrices (or tensors).

    Raises:
        UsageError: as for `matrices`.
    """
    spectrum = _spectrum(n, condition, scale)
    convert = _converter(framework)
    dtype = _float_dtype(dtype, framework)

    def build(q_eigen: tuple[np.ndarray, np.ndarray]) -> Any:
        q, eigen = q_eigen
        a = (q * eigen) @ q.T
        return convert(((a + a.T) / 2).astype(dtype))

    return st.tuples(_orthogonal(n), spectrum).map(build)


def _width(dtype: str | None, framework: Framework, widths: dict[str, int]) -> int:
    """The bit width of a float dtype; None picks the framework's widest usable one."""
    if dtype is None:
        dtype = "float32" if _jax_float32(framework) else "float64"
    if dtype not in widths:
        raise UsageError(f"dtype must be one of {tuple(widths)}, got {dtype!r}")
    if dtype == "float64" and _jax_float32(framework):
        raise UsageError(
            "JAX makes float64 arrays only with jax_enable_x64 set: pass dtype='float32' or "
            "dtype=None (gradcheck checks in float64 on copies either way)"
        )
    return widths[dtype]


def _float_dtype(dtype: str | None, framework: Framework) -> str:
    """The dtype for matrices: float32 or float64 (float16 is too coarse to keep a condition)."""
    width = _width(dtype, framework, {"float32": 32, "float64": 64})
    return f"float{width}"


def _jax_float32(framework: Framework) -> bool:
    """True for JAX without x64, which silently turns float64 data into float32."""
    if framework != "jax":
        return False
    import jax

    return bool(jax.dtypes.canonicalize_dtype(np.float64) == np.float32)


def _representable(value: float, width: int, direction: float) -> float:
    """`value` rounded to the float width, moved towards `direction` if rounding left it."""
    kind = np.dtype(f"float{width}")
    rounded = np.asarray(value, dtype=kind)
    near = float(rounded)
    if (direction > value > near) or (direction < value < near):
        near = float(np.nextafter(rounded, np.asarray(direction, dtype=kind)))
    return near


def _intervals(
    low: float, high: float, kinks: Sequence[float], margin: float, width: int
) -> list[tuple[float, float]]:
    """[low, high] without an open window of margin·max(1, |k|) around each kink k.

    The ends are rounded inwards to the float width, so every value hypothesis draws keeps
    its distance after the cast.

    Raises:
        UsageError: nothing is left.
    """
    if not (np.isfinite(low) and np.isfinite(high) and low <= high) or margin < 0:
        raise UsageError(f"need finite low <= high and margin >= 0, got {low}, {high}, {margin}")
    pieces = [(low, high)]
    for kink in sorted(kinks):
        gap = margin * max(1.0, abs(kink))
        left, right = kink - gap, kink + gap
        kept = []
        for a, b in pieces:
            if a < left:
                kept.append((a, min(b, left)))
            if b > right:
                kept.append((max(a, right), b))
        pieces = kept
    rounded = [(_representable(a, width, b), _representable(b, width, a)) for a, b in pieces]
    pieces = [(a, b) for a, b in rounded if a <= b]
    if not pieces:
        raise UsageError(
            f"no values in [{low}, {high}] are {margin}·max(1, |k|) away from the kinks {kinks}"
        )
    return pieces


def _spectrum(n: int, condition: float, scale: float) -> st.SearchStrategy[np.ndarray]:
    """n values from scale down to scale/condition: both ends exact, the rest log-uniform."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"n must be a positive integer, got {n!r}")
    if not (condition >= 1 and np.isfinite(condition)) or (n == 1 and condition != 1):
        raise UsageError(
            f"condition must be a finite number >= 1 (exactly 1 for n = 1), got {condition!r}"
        )
    if not (scale > 0 and np.isfinite(scale)):
        raise UsageError(f"scale must be a positive number, got {scale!r}")
    between = max(n - 2, 0)

    def values(exponents: list[float]) -> np.ndarray:
        ends = np.array([0.0, *sorted(exponents), 1.0]) if n > 1 else np.zeros(1)
        result: np.ndarray = scale * condition**-ends
        return result

    return st.lists(st.floats(0.0, 1.0), min_size=between, max_size=between).map(values)


def _orthogonal(n: int) -> st.SearchStrategy[np.ndarray]:
    """Random n×n orthogonal matrices: the Q of a QR decomposition of drawn entries."""
    entries = hnp.arrays(np.float64, (n, n), elements=st.floats(-1.0, 1.0))
    return entries.map(lambda g: np.linalg.qr(g)[0])


def _converter(framework: Framework) -> Callable[[np.ndarray], Any]:
    """A function from NumPy arrays to `framework`'s arrays; imports the framework now."""
    convert: Callable[[np.ndarray], Any]
    if framework == "numpy":
        convert = np.asarray
    elif framework == "torch":
        import torch

        convert = torch.tensor
    elif framework == "jax":
        import jax.numpy as jnp

        convert = jnp.asarray
    elif framework == "tensorflow":
        import tensorflow as tf

        convert = tf.constant
    else:
        raise UsageError(
            f"framework must be 'numpy', 'torch', 'jax' or 'tensorflow', got {framework!r}"
        )
    return convert
