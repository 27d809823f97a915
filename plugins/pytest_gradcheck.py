"""pytest plugin for gradcheck: gradient checks as assertions in any test suite.

What it adds (registered through the ``pytest11`` entry point ``gradcheck``):

* the ``gradcheck`` fixture, an asserting checker: ``gradcheck(fn, *inputs, **options)`` runs
  ``gradcheck.check`` and returns the report, or fails the test with the evidence;
* the ``@pytest.mark.gradcheck(mode=..., seed=..., ...)`` marker: per-test defaults;
* the options ``--gradcheck-mode``, ``--gradcheck-seed`` and ``--gradcheck-report DIR``, each
  with an ini twin (``gradcheck_mode``, ...); the command line wins over the ini file;
* a terminal summary (checks run, findings by verdict, the slowest checks) and, with
  ``--gradcheck-report``, the run's checks as JSON, JUnit XML and Markdown written by the same
  writers as ``gradcheck audit`` (``gradcheck.reporting``).

Options are merged with this precedence: the call's keywords, then the marker (the closest
one wins), then the command line, then the ini file, then gradcheck's own defaults.

At module level it imports nothing but pytest and the standard library: gradcheck (NumPy) is
imported by the fixture and the report hooks, so runs that never check a gradient pay nothing.

Note: Records and pytest-xdist
    Every call of the fixture leaves its report and duration in the test item's stash. When
    the item's last report is made (teardown), they become the item's outcomes, plain dicts of
    `gradcheck.reporting.CaseOutcome`, attached to that report as the attribute ``gradcheck``:
    pytest serialises a report's extra attributes ("Reports can contain arbitrary extra
    attributes", `pytest.TestReport`), so under pytest-xdist the same dicts reach the
    controller inside the reports it already receives. The controller alone collects them in
    ``pytest_runtest_logreport`` and writes the report files, sorted by name: a ``pytest -n``
    run writes what a serial run writes, and nothing is shared through globals or files
    between processes.

    One outcome stands for one checked function in one test. A test that checks the same
    function many times (a loop, or hypothesis examples) gets one outcome that counts the
    checks and shows the last finding, else the last check: for hypothesis that is the
    minimal failing example it replays at the end.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from gradcheck import Report

MARKER_OPTIONS = (
    "atol",
    "checks",
    "max_evaluations",
    "mode",
    "nondet_tol",
    "order",
    "rtol",
    "seed",
    "step",
)
"""The keyword arguments the marker accepts: gradcheck.check's options that make sense as a
test's defaults (not its function-specific ones such as grad= or wrt=)."""

MODES = ("fast", "full")
REPORT_FORMATS = ("json", "junit", "md")
SLOWEST = 5  # slowest checks listed in the terminal summary
WORST_ENTRIES = 3  # worst entries per failing check in a failure message

_SETTINGS = pytest.StashKey["_Settings"]()
_RECORDS = pytest.StashKey[list[tuple["Report", float]]]()
_FAILURE = pytest.StashKey[tuple["Report", str]]()  # the item's last finding, with reproducer
_TEST_FAILED = pytest.StashKey[bool]()
_COLLECTOR = "gradcheck-collector"


@dataclass(frozen=True)
class _Settings:
    """The run-wide options after validation: defaults for every check, and the report folder."""

    defaults: dict[str, Any]
    report_dir: Path | None


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the options, each with an ini twin of the same name with underscores."""
    group = parser.getgroup("gradcheck", "gradient checks (gradcheck)")
    group.addoption(
        "--gradcheck-mode",
        dest="gradcheck_mode",
        metavar="fast|full",
        help="default mode of every gradient check: 'full' compares every Jacobian entry, "
        "'fast' seeded random projections (ini: gradcheck_mode)",
    )
    group.addoption(
        "--gradcheck-seed",
        dest="gradcheck_seed",
        metavar="N",
        help="default seed of every gradient check (ini: gradcheck_seed)",
    )
    group.addoption(
        "--gradcheck-report",
        dest="gradcheck_report",
        metavar="DIR",
        help="write the run's gradient checks to DIR as gradcheck.json, gradcheck.junit.xml "
        "and gradcheck.md (ini: gradcheck_report)",
    )
    parser.addini("gradcheck_mode", "default gradcheck mode: fast or full", default="")
    parser.addini("gradcheck_seed", "default gradcheck seed (an integer >= 0)", default="")
    parser.addini(
        "gradcheck_report",
        "folder for gradcheck's report files (relative to the ini file)",
        default="",
    )


def _setting(config: pytest.Config, name: str) -> tuple[str, str] | None:
    """The raw value of option `name` and where it came from; None when it is not set."""
    value = config.getoption(name)
    if value is not None:
        return str(value), "--" + name.replace("_", "-")
    value = config.getini(name)
    if value:
        return str(value), f"{name} (ini)"
    return None


def _settings(config: pytest.Config) -> _Settings:
    """Validate the options once, so a typo stops the run before any test instead of in each.

    Raises:
        pytest.UsageError: a value is not valid; the message names the option and its source.
    """
    defaults: dict[str, Any] = {}
    mode = _setting(config, "gradcheck_mode")
    if mode is not None:
        if mode[0] not in MODES:
            raise pytest.UsageError(f"{mode[1]} must be one of {', '.join(MODES)}, got {mode[0]!r}")
        defaults["mode"] = mode[0]
    seed = _setting(config, "gradcheck_seed")
    if seed is not None:
        if not seed[0].strip().isdigit():
            raise pytest.UsageError(f"{seed[1]} must be an integer >= 0, got {seed[0]!r}")
        defaults["seed"] = int(seed[0])
    report = _setting(config, "gradcheck_report")
    report_dir = None
    if report is not None:
        # A command-line path is relative to where pytest was started, an ini path to the ini
        # file, as for pytest's own path options.
        base = (
            config.invocation_params.dir
            if report[1].startswith("--")
            else (config.inipath.parent if config.inipath else config.rootpath)
        )
        report_dir = Path(base, report[0])
        if report_dir.exists() and not report_dir.is_dir():
            raise pytest.UsageError(f"{report[1]} must be a folder, but {report_dir} is a file")
    return _Settings(defaults, report_dir)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, validate the options and, on the controller, start collecting.

    It runs before hypothesis' own pytest_configure so that ``--hypothesis-profile=gradcheck``
    finds the profile that importing `gradcheck.strategies` registers.
    """
    config.addinivalue_line(
        "markers",
        "gradcheck(mode=, order=, rtol=, atol=, checks=, seed=, nondet_tol=, step=, "
        "max_evaluations=): defaults for the gradcheck fixture's checks in this test",
    )
    config.stash[_SETTINGS] = _settings(config)
    if config.getoption("hypothesis_profile", None) == "gradcheck":
        import gradcheck.strategies  # noqa: F401  (registers the profile)
    if not hasattr(config, "workerinput"):  # an xdist worker only forwards its records
        config.pluginmanager.register(_Collector(config), _COLLECTOR)


def pytest_report_header(config: pytest.Config) -> str | None:
    """The run-wide defaults in the header, so that a CI log says how its checks ran."""
    settings = config.stash[_SETTINGS]
    parts = [f"{k}={v}" for k, v in settings.defaults.items()]
    if settings.report_dir is not None:
        parts.append(f"report={settings.report_dir}")
    return f"gradcheck: {', '.join(parts)}" if parts else None


def _marker_options(item: pytest.Item) -> dict[str, Any]:
    """The gradcheck marks of `item` merged, the closest (the test's own) winning.

    Raises:
        pytest.UsageError: a mark has positional arguments or an option not in MARKER_OPTIONS.
    """
    options: dict[str, Any] = {}
    for mark in reversed(list(item.iter_markers("gradcheck"))):
        unknown = sorted(set(mark.kwargs) - set(MARKER_OPTIONS))
        if mark.args or unknown:
            bad = f"positional arguments {mark.args!r}" if mark.args else f"{unknown}"
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.gradcheck takes only the keyword arguments "
                f"{', '.join(MARKER_OPTIONS)}; got {bad}"
            )
        options.update(mark.kwargs)
    return options


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check every gradcheck mark at collection: a typo is a usage error, not a silent no-op.

    pytest-xdist workers leave it to `pytest_runtest_setup`: a usage error raised while a
    worker collects is an internal error of the whole run, not a message.
    """
    if not hasattr(config, "workerinput"):
        for item in items:
            _marker_options(item)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under pytest-xdist, a bad gradcheck mark makes its test an error that says why."""
    try:
        _marker_options(item)
    except pytest.UsageError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def gradcheck(request: pytest.FixtureRequest) -> _Checker:
    """An asserting gradient checker: ``gradcheck(fn, *inputs, **options)`` returns the report.

    The options are those of `gradcheck.check`, merged over the test's ``gradcheck`` marker
    and the ``--gradcheck-*`` options. Unless the verdict is "pass" it raises
    `gradcheck.GradientError` (an AssertionError carrying ``.report``) whose message gives the
    verdict, the worst entries, the likely cause, the seed and a one-line reproducer; the test
    also gets a "gradcheck" report section with the full report and JUnit XML properties.

    The checker keeps no state between calls apart from the list of records the report is
    built from, so it is safe to reuse across hypothesis examples.

    Example:
        >>> def test_sin(gradcheck):
        ...     gradcheck(np.sin, np.array([0.5, 1.0]), jacobian=lambda x: np.diag(np.cos(x)))
    """
    defaults = {**request.config.stash[_SETTINGS].defaults, **_marker_options(request.node)}
    return _Checker(request.node, defaults)


class _Checker:
    """The `gradcheck` fixture's value; its repr is what pytest shows for the argument."""

    def __init__(self, node: pytest.Item, defaults: dict[str, Any]) -> None:
        self.node = node
        self.defaults = defaults

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        return f"<gradcheck checker{' ' + options if options else ''}>"

    def __call__(self, fn: Callable[..., Any], /, *inputs: Any, **options: Any) -> Report:
        __tracebackhide__ = True  # the failure points at the test's line, not at this plugin
        import gradcheck as gc

        merged = {**self.defaults, **options}
        start = time.perf_counter()
        try:
            report = gc.check(fn, *inputs, **merged)
        except gc.UsageError as error:
            # A wrong call is the test's mistake: show the test's line, not gradcheck's insides.
            raise error.with_traceback(None) from None
        self.node.stash.setdefault(_RECORDS, []).append((report, time.perf_counter() - start))
        if report.passed:
            return report
        reproducer = _reproducer(fn, report, merged)
        self.node.stash[_FAILURE] = (report, reproducer)
        failure = gc.GradientError(report)
        failure.args = (_failure_message(report, reproducer),)
        raise failure


def _option_source(value: Any) -> str:
    """How an option value reads in a reproducer: literals as such, callables by name."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, list):
        return f"[{', '.join(_option_source(v) for v in value)}]"
    if isinstance(value, tuple):
        items = ", ".join(_option_source(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    if inspect.ismethod(value):  # MyFunction.apply, not the Function.apply it inherits
        owner = value.__self__ if isinstance(value.__self__, type) else type(value.__self__)
        return f"{owner.__qualname__}.{value.__name__}"
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    return str(name) if name else f"<{type(value).__name__}>"


def _reproducer(fn: Callable[..., Any], report: Report, options: Mapping[str, Any]) -> str:
    """One line that re-runs the failing check with the options the test used."""
    shown = {k: v for k, v in options.items() if k not in ("mode", "seed")}
    args = [_option_source(fn), "*inputs"]
    args += [f"{k}={_option_source(v)}" for k, v in shown.items()]
    args += [f"mode={report.mode!r}", f"seed={report.seed}"]
    inputs = "; ".join(report.inputs)
    return f"gc.check({', '.join(args)})" + (f"  # inputs: {inputs}" if inputs else "")


def _failure_message(report: Report, reproducer: str) -> str:
    """The assertion message: what failed and by how much, shortest first; the rest is in the
    "gradcheck" section."""
    lines = [
        f"gradcheck {report.verdict.upper()}: {report.name} ({report.framework}, "
        f"mode={report.mode}, order={report.order}, seed={report.seed})"
    ]
    for result in report.checks:
        if result.passed:
            continue
        order = f" order {result.order}" if result.order > 1 else ""
        lines.append(f"  [{result.verdict}] {result.kind}{order}: {result.message}")
        if result.cause:
            lines.append(f"      likely cause: {result.cause}")
        lines.extend(f"      {e.describe()}" for e in result.worst[:WORST_ENTRIES])
    lines.append(f"  reproduce: {reproducer}")
    return "\n".join(lines)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the last finding to the failed phase's report and the item's outcomes to its
    teardown report (Note: Records and pytest-xdist).

    The finding goes in here, once, rather than from the fixture: hypothesis calls the fixture
    for every example it shrinks, and only the last one is the example it reports.
    """
    report = yield
    if report.failed:
        item.stash[_TEST_FAILED] = True
    failure = item.stash.get(_FAILURE, None)
    if report.failed and failure is not None:
        found, reproducer = failure
        del item.stash[_FAILURE]
        report.sections.append((f"Captured gradcheck {report.when}", str(found)))
        item.user_properties.extend(  # JUnit XML reads them from the teardown report
            [
                ("gradcheck_verdict", found.verdict),
                ("gradcheck_seed", found.seed),
                ("gradcheck_reproduce", reproducer),
            ]
        )
    records = item.stash.get(_RECORDS, None)
    if call.when == "teardown" and records:
        passed = not item.stash.get(_TEST_FAILED, False)
        report.gradcheck = _outcomes(item, records, passed)  # type: ignore[attr-defined]
    return report


def _outcomes(
    item: pytest.Item, records: list[tuple[Report, float]], test_passed: bool
) -> list[dict[str, Any]]:
    """One `gradcheck.reporting.CaseOutcome` per function checked, as a dict (plain data for
    pytest-xdist), with three more keys for the terminal summary: ``checks``, ``test`` and
    ``expected`` (a finding in a test that passed: it expected it, with ``pytest.raises``).
    The finding's status stays its verdict: the report is about gradients, not tests."""
    from gradcheck.reporting import CaseOutcome

    by_function: dict[str, list[tuple[Report, float]]] = {}
    for report, duration in records:
        by_function.setdefault(report.name, []).append((report, duration))
    path, line, _ = item.location
    outcomes = []
    for function, group in by_function.items():
        findings = [report for report, _ in group if not report.passed]
        shown = (findings or [report for report, _ in group])[-1]
        outcome = CaseOutcome.from_report(
            item.nodeid if len(by_function) == 1 else f"{item.nodeid}::{function}",
            shown,
            sum(duration for _, duration in group),
            path,
            None if line is None else line + 1,
        )
        count = f" ({len(group)} checks)" if len(group) > 1 else ""
        expected = test_passed and not shown.passed
        message = ("expected by its test: " if expected else "") + outcome.message + count
        data = outcome.to_dict()
        data.update(message=message, checks=len(group), test=item.nodeid, expected=expected)
        outcomes.append(data)
    return outcomes


class _Collector:
    """The controller's side: gathers outcomes, prints the summary, writes the report files."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.outcomes: list[dict[str, Any]] = []
        self.written: list[Path] = []
        self.started = datetime.now(timezone.utc)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.outcomes.extend(getattr(report, "gradcheck", ()))

    def sorted_outcomes(self) -> list[dict[str, Any]]:
        """By name, so that xdist's order of completion does not reach the report."""
        return sorted(self.outcomes, key=lambda o: o["name"])

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        report_dir = self.config.stash[_SETTINGS].report_dir
        if report_dir is None:
            return
        import gradcheck
        from gradcheck.reporting import CaseOutcome, Run, write_reports

        outcomes = tuple(CaseOutcome.from_dict(o) for o in self.sorted_outcomes())
        # Stopped early (-x, --maxfail, Ctrl-C): the report says it is partial.
        partial = exitstatus == pytest.ExitCode.INTERRUPTED or bool(
            session.shouldstop or session.shouldfail
        )
        meta = {
            "gradcheck": gradcheck.__version__,
            "command": "pytest",
            **self.config.stash[_SETTINGS].defaults,
            "started": self.started.isoformat(timespec="seconds"),
            "duration": (datetime.now(timezone.utc) - self.started).total_seconds(),
        }
        run = Run(outcomes, partial, meta)
        self.written = write_reports(run, report_dir, REPORT_FORMATS)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.outcomes:
            return
        from gradcheck.reporting import STATUSES

        outcomes = self.sorted_outcomes()
        checks = sum(o["checks"] for o in outcomes)
        tests = len({o["test"] for o in outcomes})
        seconds = sum(o["duration"] for o in outcomes)
        statuses = [o["status"] for o in outcomes]
        verdicts = ", ".join(f"{s} {statuses.count(s)}" for s in STATUSES if s in statuses)
        expected = sum(o["expected"] for o in outcomes)
        if expected:
            verdicts += f" ({expected} expected by passing tests)"
        write = terminalreporter.write_line
        terminalreporter.write_sep("=", "gradcheck")
        write(f"{_count(checks, 'check')} in {_count(tests, 'test')} ({seconds:.2f}s): {verdicts}")
        slowest = sorted(outcomes, key=lambda o: -o["duration"])[:SLOWEST]
        write("slowest checks:")
        for outcome in slowest:
            count = f" ({outcome['checks']} checks)" if outcome["checks"] > 1 else ""
            write(f"  {outcome['duration']:7.2f}s {outcome['name']}{count}")
        if self.written:
            files = ", ".join(path.name for path in self.written)
            write(f"report: {self.written[0].parent}: {files}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
