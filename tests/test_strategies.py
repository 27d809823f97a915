"""gradcheck.strategies: the generated data keeps its promises, with every health check on.

None of these tests suppresses a health check: a strategy that filtered its way to its
promises would fail them with ``filter_too_much``.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradcheck as gc
import gradcheck.strategies as gst

pytest_plugins = ["pytester"]

FEW = settings(max_examples=25)  # for the properties that run a whole gradient check


@given(x=gst.arrays((2, 3)))
def test_real_arrays_default_to_float64_within_the_bound(x: np.ndarray) -> None:
    assert (x.shape, x.dtype) == ((2, 3), np.dtype(np.float64))
    assert np.all(np.abs(x) <= 10.0)


@given(x=gst.arrays(hnp.array_shapes(max_dims=3), domain="positive", bound=3.0))
def test_positive_arrays_stay_a_margin_above_zero(x: np.ndarray) -> None:
    assert np.all((x >= gst.KINK_MARGIN) & (x <= 3.0))


@given(x=gst.arrays(5, domain="unit", dtype="float32"))
def test_unit_arrays_stay_a_margin_inside_zero_and_one(x: np.ndarray) -> None:
    assert x.dtype == np.float32
    assert np.all((x >= gst.KINK_MARGIN) & (x <= 1 - gst.KINK_MARGIN))


KINKS = (-2.5, 0.0, 1.0)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("margin", [gst.KINK_MARGIN, 0.25])
def test_arrays_keep_their_distance_from_kinks(dtype: str, margin: float) -> None:
    @given(x=gst.arrays(20, dtype=dtype, bound=4.0, kinks=KINKS, margin=margin))
    def keeps_distance(x: np.ndarray) -> None:
        assert x.dtype == np.dtype(dtype)
        for kink in KINKS:
            assert np.all(np.abs(x.astype(np.float64) - kink) >= margin * max(1, abs(kink)))

    keeps_distance()


def test_arrays_reach_every_interval_between_kinks() -> None:
    """Built, not filtered, and not lopsided: each allowed interval gets values."""
    seen: set[int] = set()

    @given(x=gst.arrays(8, bound=4.0, kinks=KINKS))
    def record(x: np.ndarray) -> None:
        seen.update(np.searchsorted(KINKS, x).tolist())

    record()
    assert seen == {0, 1, 2, 3}


@FEW
@given(x=gst.arrays(4, bound=3.0, kinks=(0.0, 1.0)))
def test_the_kink_margin_is_enough_for_gradcheck(x: np.ndarray) -> None:
    """The promise behind the margin: at these points a clamp is differentiable to gradcheck."""
    report = gc.check(
        lambda x: np.sum(np.clip(x, 0.0, 1.0) ** 2),
        x,
        grad=lambda x: 2 * np.clip(x, 0.0, 1.0) * ((x > 0) & (x < 1)),
    )
    assert report.verdict == "pass", str(report)


@pytest.mark.parametrize(("n", "condition"), [(1, 1.0), (2, 10.0), (4, 1e3), (6, 1e6)])
def test_matrices_have_the_chosen_condition_number(n: int, condition: float) -> None:
    @given(a=gst.matrices(n, condition=condition, scale=2.0))
    def conditioned(a: np.ndarray) -> None:
        assert (a.shape, a.dtype) == ((n, n), np.dtype(np.float64))
        singular = np.linalg.svd(a, compute_uv=False)
        assert singular[0] == pytest.approx(2.0, rel=1e-12)
        assert np.linalg.cond(a) == pytest.approx(condition, rel=1e-9)

    conditioned()


@given(a=gst.spd_matrices(5, condition=100.0), b=gst.matrices(3, dtype="float32"))
def test_spd_matrices_are_symmetric_positive_definite(a: np.ndarray, b: np.ndarray) -> None:
    assert np.array_equal(a, a.T)
    eigenvalues = np.linalg.eigvalsh(a)
    assert eigenvalues.min() == pytest.approx(0.01, rel=1e-9)
    assert eigenvalues.max() == pytest.approx(1.0, rel=1e-9)
    np.linalg.cholesky(a)
    assert b.dtype == np.float32
    assert np.linalg.cond(b.astype(np.float64)) == pytest.approx(10.0, rel=1e-5)


@given(z=gst.complex_arrays((3, 2), min_magnitude=0.5, bound=2.0))
def test_complex_arrays_have_bounded_magnitudes(z: np.ndarray) -> None:
    assert (z.shape, z.dtype) == ((3, 2), np.dtype(np.complex128))
    assert np.all((np.abs(z) >= 0.5 * (1 - 1e-12)) & (np.abs(z) <= 2.0 * (1 + 1e-12)))


def _framework_cases() -> list[Any]:
    cases = []
    for framework, module in (("torch", "torch"), ("jax", "jax"), ("tensorflow", "tensorflow")):
        mark = pytest.mark.skipif(not _importable(module), reason=f"{module} is not installed")
        cases.append(pytest.param(framework, marks=mark))
    return cases


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("framework", _framework_cases())
def test_every_framework_gets_its_own_arrays(framework: Any) -> None:
    strategies = {
        "arrays": gst.arrays((2,), framework=framework, domain="positive"),
        "spd": gst.spd_matrices(3, framework=framework),
        "complex": gst.complex_arrays((2,), framework=framework),
    }

    @settings(max_examples=5)
    @given(data=st.fixed_dictionaries(strategies))
    def converted(data: dict[str, Any]) -> None:
        for value in data.values():
            assert (
                type(value).__module__.split(".")[0]
                in {
                    "torch": {"torch"},
                    "jax": {"jax", "jaxlib"},
                    "tensorflow": {"tensorflow"},
                }[framework]
            )
            assert tuple(value.shape) in {(2,), (3, 3)}
        assert np.all(np.asarray(data["arrays"]) >= gst.KINK_MARGIN)

    converted()


def test_jax_without_x64_gets_float32_and_refuses_float64() -> None:
    jax = pytest.importorskip("jax")
    if jax.dtypes.canonicalize_dtype(np.float64) == np.float64:
        pytest.skip("jax_enable_x64 is on in this process")

    @settings(max_examples=3)
    @given(x=gst.arrays(2, framework="jax"))
    def float32(x: Any) -> None:
        assert x.dtype == np.float32

    float32()
    with pytest.raises(gc.UsageError, match="jax_enable_x64"):
        gst.arrays(2, framework="jax", dtype="float64")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: gst.arrays(2, domain="negative"), "domain must be"),  # type: ignore[arg-type]
        (lambda: gst.arrays(2, dtype="int32"), "dtype must be one of"),
        (lambda: gst.arrays(2, framework="mxnet"), "framework must be"),  # type: ignore[arg-type]
        (lambda: gst.arrays(2, domain="unit", kinks=(0.5,), margin=0.5), "no values in"),
        (lambda: gst.matrices(0), "n must be a positive integer"),
        (lambda: gst.matrices(3, condition=0.5), "condition must be"),
        (lambda: gst.spd_matrices(1, condition=10.0), "exactly 1 for n = 1"),
        (lambda: gst.spd_matrices(2, scale=-1.0), "scale must be"),
        (lambda: gst.complex_arrays(2, min_magnitude=3.0, bound=2.0), "min_magnitude"),
    ],
)
def test_bad_arguments_are_usage_errors(build: Any, message: str) -> None:
    with pytest.raises(gc.UsageError, match=message):
        build()


def test_the_profile_has_no_deadline() -> None:
    assert settings.get_profile(gst.PROFILE).deadline is None


def test_import_gradcheck_does_not_import_hypothesis() -> None:
    code = "import sys, gradcheck; assert 'hypothesis' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


PROPERTY_TESTS = """
import numpy as np
from hypothesis import HealthCheck, given, settings

import gradcheck.strategies as gst


def test_profile_is_loaded():
    assert settings.get_current_profile_name() == "gradcheck"
    assert settings().deadline is None

# The gradcheck fixture is function-scoped, so hypothesis shares one instance between the
# examples of a test; that is safe here because it keeps no per-example state.
SHARED_FIXTURE = settings(
    max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SHARED_FIXTURE
@given(x=gst.arrays((3,), domain="positive"))
def test_log(gradcheck, x):
    gradcheck(lambda x: np.sum(np.log(x)), x, grad=lambda x: 1 / x)


@SHARED_FIXTURE
@given(x=gst.arrays((1,), domain="positive"))
def test_log_wrong(gradcheck, x):
    gradcheck(lambda x: np.sum(np.log(x)), x, grad=lambda x: 1 / (x + 1e-3))
"""


def test_given_with_the_fixture(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\naddopts = -p no:cacheprovider\nfilterwarnings = error\n"
        "    ignore::hypothesis.errors.NonInteractiveExampleWarning\n"
    )
    pytester.makepyfile(test_props=PROPERTY_TESTS)
    result = pytester.runpytest("--hypothesis-profile=gradcheck", "--gradcheck-report=out")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E   *GradientError: gradcheck FAIL: *<lambda> (numpy, mode=full, order=1, seed=0)",
            "E  *: test_log_wrong(",  # hypothesis names the minimal example
            "*- Captured gradcheck call -*",
        ]
    )
    assert result.stdout.str().count("Captured gradcheck call") == 1  # the minimal example's
    outcomes = (pytester.path / "out" / "gradcheck.json").read_text()
    assert '"name": "test_props.py::test_log"' in outcomes
    assert "(10 checks)" in outcomes
