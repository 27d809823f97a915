"""The pytest plugin end to end: small projects run by `pytester`, checked through pytest's output.

In-process runs (`runpytest`) keep this file fast; pytest-xdist and the import-cost test need
a fresh interpreter (`runpytest_subprocess`, `subprocess`).
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import gradcheck as gc

pytest_plugins = ["pytester"]

INI = """
[pytest]
addopts = --strict-markers --strict-config -p no:cacheprovider
filterwarnings = error
"""

# A scalar loss with its hand-written gradient, and the same gradient 0.1 % off in one entry.
LOSSES = """
import numpy as np
import pytest

import gradcheck as gc

X = np.array([0.3, -1.2, 2.0])


def loss(x):
    return np.sum(np.sin(x) ** 2)


def loss_grad(x):
    return 2 * np.sin(x) * np.cos(x)


def wrong_grad(x):
    return loss_grad(x) * np.array([1.0, 1.001, 1.0])
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project that treats warnings as errors and knows its markers, like gradcheck's own."""
    pytester.makeini(INI)
    pytester.makepyfile(losses=LOSSES)
    return pytester


def test_passing_and_failing_checks(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        from losses import *

        def test_right(gradcheck):
            report = gradcheck(loss, X, grad=loss_grad)
            assert report.passed and report.name == "loss"

        def test_wrong(gradcheck):
            gradcheck(loss, X, grad=wrong_grad)

        def test_wrong_is_a_gradient_error(gradcheck):
            with pytest.raises(gc.GradientError) as caught:
                gradcheck(loss, X, grad=wrong_grad)
            assert caught.value.report.verdict == "fail"
        """
    )
    result = project.runpytest("--junitxml=junit.xml")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "    def test_wrong(gradcheck):",
            ">       gradcheck(loss, X, grad=wrong_grad)",
            "E       *GradientError: gradcheck FAIL: loss (numpy, mode=full, order=1, seed=0)",
            "E         [[]fail[]] vjp: *",
            "E             input[[]0[]][[]1[]]: analytic=* numeric=*±* |diff|=* tol=*",
            "E         reproduce: gc.check(loss, [*]inputs, grad=wrong_grad, mode='full', seed=0)"
            "  # inputs: input[[]0[]]: float64[[]3[]]",
            "test_passing_and_failing_checks.py:8: GradientError",
            "*- Captured gradcheck call -*",
            "gradcheck FAIL: loss *",
            "*= gradcheck =*",
            "3 checks in 3 tests (*s): pass 1, fail 2 (1 expected by passing tests)",
        ]
    )
    # The failure points at the test's line: no frame from gradcheck or from the plugin.
    assert "gradcheck/_" not in result.stdout.str()
    assert "pytest_gradcheck.py" not in result.stdout.str()
    failing = ET.parse(project.path / "junit.xml").getroot().find(".//testcase[@name='test_wrong']")
    assert failing is not None
    properties = {p.get("name"): p.get("value") for p in failing.iter("property")}
    assert properties["gradcheck_verdict"] == "fail"
    assert properties["gradcheck_seed"] == "0"
    assert str(properties["gradcheck_reproduce"]).startswith("gc.check(loss, *inputs, grad=wrong")


def test_reproducer_names_what_the_test_passed(project: pytest.Pytester) -> None:
    """A method inherited from a base class (torch's Function.apply) reads as the subclass's."""
    project.makepyfile(
        """
        from losses import *

        class Base:
            @classmethod
            def loss(cls, x):
                return loss(x)

        class Mine(Base):
            pass

        def test_method(gradcheck):
            gradcheck(Mine.loss, X, grad=wrong_grad, rtol=0.0, wrt=[0], kwargs=None)
        """
    )
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E         reproduce: gc.check(Mine.loss, [*]inputs, grad=wrong_grad, rtol=0.0, "
            "wrt=[[]0[]], kwargs=None, mode='full', seed=0)  # inputs: *"
        ]
    )


def test_usage_errors_point_at_the_test(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        from losses import *

        def test_bad_mode(gradcheck):
            gradcheck(loss, X, grad=loss_grad, mode="slow")
        """
    )
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E   *UsageError: mode must be one of*", "*:4: UsageError"])
    assert "gradcheck/_" not in result.stdout.str()


def test_marker_defaults_and_precedence(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        from losses import *

        pytestmark = pytest.mark.gradcheck(mode="fast", seed=1)

        def test_module_marker(gradcheck):
            report = gradcheck(loss, X, grad=loss_grad)
            assert (report.mode, report.seed) == ("fast", 1)

        @pytest.mark.gradcheck(seed=2, order=2)
        def test_closest_marker_wins(gradcheck):
            report = gradcheck(loss, X, grad=loss_grad, hvp=lambda x, v: 2 * np.cos(2 * x) * v)
            assert (report.mode, report.seed, report.order) == ("fast", 2, 2)

        @pytest.mark.gradcheck(seed=2)
        def test_call_wins(gradcheck):
            report = gradcheck(loss, X, grad=loss_grad, seed=3, mode="full")
            assert (report.mode, report.seed) == ("full", 3)
        """
    )
    project.runpytest("--gradcheck-seed=9", "--gradcheck-mode=full").assert_outcomes(passed=3)


@pytest.mark.parametrize(
    "mark",
    ["@pytest.mark.gradcheck(moed='fast')", "@pytest.mark.gradcheck('fast')"],
    ids=["unknown-keyword", "positional"],
)
def test_bad_marker_is_a_usage_error(project: pytest.Pytester, mark: str) -> None:
    project.makepyfile(
        f"""
        from losses import *

        {mark}
        def test_marked(gradcheck):
            gradcheck(loss, X, grad=loss_grad)
        """
    )
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *::test_marked: @pytest.mark.gradcheck takes only the keyword arguments*"]
    )


def test_bad_marker_under_xdist_is_an_error_of_its_test(project: pytest.Pytester) -> None:
    """A usage error while an xdist worker collects would be an INTERNALERROR of the run."""
    pytest.importorskip("xdist")
    project.makepyfile(
        """
        import pytest

        @pytest.mark.gradcheck(moed="fast")
        def test_marked():
            pass

        def test_other():
            pass
        """
    )
    result = project.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.gradcheck takes only the keyword arguments*"])


def test_marker_is_registered_for_strict_markers(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.gradcheck(mode="fast")
        def test_marked():
            pass
        """
    )
    project.runpytest("--strict-markers").assert_outcomes(passed=1)
    project.runpytest("--markers").stdout.fnmatch_lines(["@pytest.mark.gradcheck(mode=*"])


SHOW_OPTIONS = """
from losses import *

def test_show(gradcheck):
    report = gradcheck(loss, X, grad=loss_grad)
    print(f"MODE={report.mode} SEED={report.seed}")

@pytest.mark.gradcheck(seed=11)
def test_show_marked(gradcheck):
    report = gradcheck(loss, X, grad=loss_grad)
    print(f"MARKED MODE={report.mode} SEED={report.seed}")
"""


@pytest.mark.parametrize(
    ("ini", "args", "expected"),
    [
        ("", [], ["MODE=full SEED=0", "MARKED MODE=full SEED=11"]),
        (
            "gradcheck_mode = fast\ngradcheck_seed = 5",
            [],
            ["gradcheck: mode=fast, seed=5", "MODE=fast SEED=5", "*SEED=11"],
        ),
        (
            "gradcheck_mode = fast\ngradcheck_seed = 5",
            ["--gradcheck-mode=full", "--gradcheck-seed=9"],
            ["MODE=full SEED=9", "MARKED MODE=full SEED=11"],
        ),
    ],
    ids=["defaults", "ini", "command-line-over-ini"],
)
def test_options_and_ini(
    pytester: pytest.Pytester, ini: str, args: list[str], expected: list[str]
) -> None:
    pytester.makeini(INI + ini)
    pytester.makepyfile(losses=LOSSES, test_show=SHOW_OPTIONS)
    result = pytester.runpytest("-s", *args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*{line}*" for line in expected])


@pytest.mark.parametrize(
    ("ini", "args", "message"),
    [
        ("", ["--gradcheck-mode=slow"], "--gradcheck-mode must be one of fast, full, got 'slow'"),
        ("gradcheck_mode = Full", [], "gradcheck_mode (ini) must be one of fast, full, got 'Full'"),
        ("", ["--gradcheck-seed=-1"], "--gradcheck-seed must be an integer >= 0, got '-1'"),
        ("gradcheck_seed = x", [], "gradcheck_seed (ini) must be an integer >= 0, got 'x'"),
        ("", ["--gradcheck-report=losses.py"], "--gradcheck-report must be a folder, but *"),
    ],
)
def test_bad_option_values_are_usage_errors(
    pytester: pytest.Pytester, ini: str, args: list[str], message: str
) -> None:
    pytester.makeini(INI + ini)
    pytester.makepyfile(losses=LOSSES, test_nothing="def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


REPORTED = """
from losses import *

def test_right(gradcheck):
    gradcheck(loss, X, grad=loss_grad)

def test_wrong(gradcheck):
    gradcheck(loss, X, grad=wrong_grad)

def test_two_functions(gradcheck):
    gradcheck(loss, X, grad=loss_grad)
    gradcheck(np.sin, X, jacobian=lambda x: np.diag(np.cos(x)))

@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_many_points(gradcheck, scale):
    for k in range(3):
        gradcheck(loss, scale * X + k, grad=loss_grad, mode="fast")

def test_no_check():
    pass
"""


def _report_files(folder: Path) -> dict[str, Any]:
    """The JSON report without its timings, and the other two files, for comparison."""
    run = json.loads((folder / "gradcheck.json").read_text())
    for outcome in run["outcomes"]:
        outcome["duration"] = 0.0
    run["meta"] = {k: v for k, v in run["meta"].items() if k not in ("started", "duration")}
    junit = ET.parse(folder / "gradcheck.junit.xml").getroot()
    names = sorted(case.get("name", "") for case in junit.iter("testcase"))
    return {"json": run, "junit": names, "md": (folder / "gradcheck.md").read_text().count("|")}


def test_report_files_and_summary(project: pytest.Pytester) -> None:
    project.makepyfile(test_reported=REPORTED)
    result = project.runpytest("--gradcheck-report=out")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*= gradcheck =*",
            "10 checks in 5 tests (*s): pass 5, fail 1",
            "slowest checks:",
            "*s test_reported.py::*",
            "report: */out: gradcheck.json, gradcheck.junit.xml, gradcheck.md",
        ]
    )
    run = json.loads((project.path / "out" / "gradcheck.json").read_text())
    statuses = {o["name"]: o["status"] for o in run["outcomes"]}
    assert list(statuses) == [
        "test_reported.py::test_many_points[0.5]",
        "test_reported.py::test_many_points[2.0]",
        "test_reported.py::test_right",
        "test_reported.py::test_two_functions::loss",
        "test_reported.py::test_two_functions::sin",
        "test_reported.py::test_wrong",
    ]
    assert [name for name, status in statuses.items() if status != "pass"] == [
        "test_reported.py::test_wrong"
    ]
    wrong = run["outcomes"][-1]
    assert wrong["report"]["verdict"] == "fail"
    assert wrong["text"].startswith("gradcheck FAIL: loss")
    assert (wrong["file"], wrong["line"]) == ("test_reported.py", 6)  # the def line
    assert run["outcomes"][0]["message"].endswith("(3 checks)")
    assert run["meta"]["command"] == "pytest"
    files = _report_files(project.path / "out")
    assert len(files["junit"]) == 6
    assert "test_wrong" in (project.path / "out" / "gradcheck.md").read_text()


def test_report_folder_paths(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ini path is relative to the ini file, a command-line path to where pytest started."""
    pytester.makeini(INI + "gradcheck_report = build/checks")
    pytester.makepyfile(losses=LOSSES, test_one=SHOW_OPTIONS)
    sub = pytester.mkdir("sub")
    monkeypatch.chdir(sub)
    pytester.runpytest(str(pytester.path)).assert_outcomes(passed=2)
    assert (pytester.path / "build" / "checks" / "gradcheck.json").is_file()
    assert not (sub / "build").exists()
    pytester.runpytest(str(pytester.path), "--gradcheck-report=here").assert_outcomes(passed=2)
    assert (sub / "here" / "gradcheck.json").is_file()


def test_xdist_run_reports_what_a_serial_run_reports(project: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    project.makepyfile(test_reported=REPORTED)
    serial = project.runpytest_subprocess("--gradcheck-report=serial")
    spread = project.runpytest_subprocess("-n", "2", "--gradcheck-report=spread")
    serial.assert_outcomes(passed=5, failed=1)
    spread.assert_outcomes(passed=5, failed=1)
    spread.stdout.fnmatch_lines(["*= gradcheck =*", "10 checks in 5 tests (*s): pass 5, fail 1"])
    expected = _report_files(project.path / "serial")
    assert len(expected["json"]["outcomes"]) == 6
    assert _report_files(project.path / "spread") == expected


def test_plugin_costs_nothing_to_a_run_without_checks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_plain():
            loaded = {"gradcheck", "numpy", "torch", "jax", "tensorflow", "keras"}
            assert not loaded & set(sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pytest_gradcheck" in sys.modules  # the plugin itself was loaded in this process


FRAMEWORK_TESTS = """
import numpy as np
import pytest

import gradcheck as gc


def check_finds(gradcheck, verdict, fn, *inputs, **options):
    with pytest.raises(gc.GradientError) as finding:
        gradcheck(fn, *inputs, **options)
    assert finding.value.report.verdict == verdict, str(finding.value.report)


def test_numpy(gradcheck):
    grad = lambda x: 1 - np.tanh(x) ** 2
    gradcheck(lambda x: np.sum(np.tanh(x)), np.array([0.1, -0.4]), grad=grad)


def test_numpy_nonfinite(gradcheck):
    f = lambda x: np.sum(x**2)
    check_finds(gradcheck, "nonfinite", f, np.array([1.0, 2.0]), grad=lambda x: x * np.nan)


def inf_at_zero(x):
    return np.where(x == 0, np.inf, 2 * x)


def test_numpy_inf_nonfinite(gradcheck):
    check_finds(gradcheck, "nonfinite", lambda x: np.sum(x**2), np.zeros(2), grad=inf_at_zero)


def test_numpy_inf_fast_nonfinite(gradcheck):
    f = lambda x: np.sum(x**2)
    check_finds(gradcheck, "nonfinite", f, np.zeros(2), grad=inf_at_zero, mode="fast")


def test_torch(gradcheck):
    torch = pytest.importorskip("torch")
    gradcheck(lambda x: torch.tanh(x).sum(), torch.tensor([0.1, -0.4], dtype=torch.float64))


def test_torch_wrong(gradcheck):  # the value's gradient taken through x alone: slope 1
    torch = pytest.importorskip("torch")
    f = lambda x: ((torch.tanh(x) - x).detach() + x).sum()
    check_finds(gradcheck, "fail", f, torch.tensor([0.1, -0.4], dtype=torch.float64))


def test_torch_nonfinite(gradcheck):  # float32, the infinite slope of sqrt at 0
    torch = pytest.importorskip("torch")
    check_finds(gradcheck, "nonfinite", lambda x: torch.sqrt(x).sum(), torch.tensor([0.0, 1.0]))


def test_torch_fast_nonfinite(gradcheck):
    torch = pytest.importorskip("torch")
    f = lambda x: torch.sqrt(x).sum()
    check_finds(gradcheck, "nonfinite", f, torch.tensor([0.0, 1.0]), mode="fast")


def test_torch_nan_value_nonfinite(gradcheck):
    torch = pytest.importorskip("torch")
    f = lambda x: (x * float("nan")).sum()
    check_finds(gradcheck, "nonfinite", f, torch.tensor([1.0]))


def test_jax(gradcheck):
    jnp = pytest.importorskip("jax.numpy")
    gradcheck(lambda x: jnp.sum(jnp.tanh(x)), jnp.array([0.1, -0.4]))


def test_jax_wrong(gradcheck):
    jax = pytest.importorskip("jax")
    f = lambda x: jax.numpy.sum(jax.lax.stop_gradient(jax.numpy.tanh(x) - x) + x)
    check_finds(gradcheck, "fail", f, jax.numpy.array([0.1, -0.4]))


def test_jax_nonfinite(gradcheck):
    jnp = pytest.importorskip("jax.numpy")
    check_finds(gradcheck, "nonfinite", lambda x: jnp.sum(jnp.sqrt(x)), jnp.array([0.0, 1.0]))


def test_tensorflow(gradcheck):
    tf = pytest.importorskip("tensorflow")
    gradcheck(lambda x: tf.reduce_sum(tf.tanh(x)), tf.constant([0.1, -0.4], dtype=tf.float64))


def test_tensorflow_wrong(gradcheck):
    tf = pytest.importorskip("tensorflow")
    f = lambda x: tf.reduce_sum(tf.stop_gradient(tf.tanh(x) - x) + x)
    check_finds(gradcheck, "fail", f, tf.constant([0.1, -0.4], dtype=tf.float64))


def test_tensorflow_nonfinite(gradcheck):
    tf = pytest.importorskip("tensorflow")
    f = lambda x: tf.reduce_sum(tf.sqrt(x))
    check_finds(gradcheck, "nonfinite", f, tf.constant([0.0, 1.0]))
"""


@pytest.fixture(scope="module")
def framework_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Run FRAMEWORK_TESTS once, with warnings as errors: each test's outcome by name.

    A subprocess, not pytester's in-process run: pytester restores `sys.modules` after each
    run, and torch, JAX and TensorFlow crash when their lazily loaded C extensions load twice.
    The value is "passed", "skipped" or the failure's text.
    """
    folder = tmp_path_factory.mktemp("frameworks")
    (folder / "pytest.ini").write_text(
        INI
        + "    ignore::DeprecationWarning:tensorflow.*\n    ignore::DeprecationWarning:keras.*\n"
    )
    (folder / "test_frameworks.py").write_text(FRAMEWORK_TESTS)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--junitxml=junit.xml"],
        cwd=folder,
        capture_output=True,
        check=False,
        timeout=600,
    )
    outcomes = {}
    for case in ET.parse(folder / "junit.xml").getroot().iter("testcase"):
        problem = case.find("failure")
        problem = case.find("error") if problem is None else problem
        if problem is not None:
            outcomes[case.get("name", "")] = (
                problem.get("message", "") + "\n" + (problem.text or "")
            )
        else:
            outcomes[case.get("name", "")] = (
                "skipped" if case.find("skipped") is not None else "passed"
            )
    return outcomes


def _outcome(run: dict[str, str], test: str) -> None:
    if run[test] == "skipped":
        pytest.skip(f"{test}: its framework is not installed")
    assert run[test] == "passed", run[test]


NONFINITE_CASES = (
    "numpy",
    "numpy_inf",
    "numpy_inf_fast",
    "torch",
    "torch_fast",
    "torch_nan_value",
    "jax",
    "tensorflow",
)


@pytest.mark.parametrize("framework", NONFINITE_CASES)
def test_no_warning_escapes_gradchecks_arithmetic(
    framework_run: dict[str, str], framework: str
) -> None:
    """A NaN/inf gradient or value is a `nonfinite` finding, not a RuntimeWarning (#13)."""
    _outcome(framework_run, f"test_{framework}_nonfinite")


@pytest.mark.parametrize("framework", ["numpy", "torch", "jax", "tensorflow"])
def test_every_framework(framework_run: dict[str, str], framework: str) -> None:
    """The fixture passes a right gradient and catches a wrong one in every framework."""
    _outcome(framework_run, f"test_{framework}")
    if framework != "numpy":
        _outcome(framework_run, f"test_{framework}_wrong")


@pytest.mark.skipif(
    "checks" not in inspect.signature(gc.check).parameters, reason="gc.check has no checks="
)
def test_marker_chooses_the_kinds_of_check(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        from losses import *

        jvp = lambda x, v: loss_grad(x) @ v

        @pytest.mark.gradcheck(checks=["vjp"])
        def test_reverse_only(gradcheck):
            report = gradcheck(loss, X, grad=loss_grad, jvp=jvp)
            assert [c.kind for c in report.checks] == ["vjp"]

        def test_all_kinds(gradcheck):
            report = gradcheck(loss, X, grad=loss_grad, jvp=jvp)
            assert {"vjp", "jvp", "adjoint"} <= {c.kind for c in report.checks}
        """
    )
    project.runpytest().assert_outcomes(passed=2)


# Options that gradcheck.check gained recently; the marker passes them on without knowing them.
NEW_OPTIONS = {"checks": "['nonsense']", "nondet_tol": "-1", "step": "-1", "max_evaluations": "-1"}


@pytest.mark.parametrize(
    "option", [o for o in NEW_OPTIONS if o in inspect.signature(gc.check).parameters]
)
def test_marker_passes_options_on_to_check(project: pytest.Pytester, option: str) -> None:
    """gradcheck.check, not the plugin, judges an option's value: the plugin stays in step."""
    project.makepyfile(
        f"""
        from losses import *

        @pytest.mark.gradcheck({option}={NEW_OPTIONS[option]})
        def test_marked(gradcheck):
            gradcheck(loss, X, grad=loss_grad)
        """
    )
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"E   *UsageError: *{option}*"])
