"""The ``gradcheck`` command: ``gradcheck audit`` checks modules, ``gradcheck report`` merges runs.

This is the only module that imports the CLI libraries (typer, rich), so ``import gradcheck``
stays NumPy-only. The commands are thin: resolve targets (`gradcheck._audit`), run them in
isolated workers, and hand the outcomes to the pure writers of `gradcheck.reporting`.

Exit codes: 0 every case passes (or is skipped), 1 findings, 2 usage or import error,
130 interrupted (Ctrl-C; the reports written are marked partial).
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys
import threading
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import GradcheckError, __version__
from ._audit import Audit, Options, Unit, resolve
from ._audit import config as project_config
from .reporting import (
    FORMATS,
    CaseOutcome,
    Run,
    check_formats,
    github_annotations,
    merge,
    read_json,
    to_markdown,
    write_reports,
)

INTERRUPTED = 130  # the shell's code for a process ended by SIGINT
STYLES = {"pass": "green", "skipped": "dim", "error": "bold magenta"}

app = typer.Typer(
    name="gradcheck",
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out_console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class Mode(str, Enum):
    """How each case is compared: every Jacobian entry, or random projections."""

    full = "full"
    fast = "fast"


def _show_version(value: bool) -> None:
    if value:
        out_console.print(f"gradcheck {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Check analytic gradients (NumPy, PyTorch, JAX, TensorFlow/Keras) against finite differences.

    [bold]gradcheck audit examples/[/] checks every [cyan]@gradcheck.case[/] and every custom
    gradient rule, module and layer it can find, and writes reports to [cyan]reports/[/].
    """


FormatOption = Annotated[
    list[str] | None,
    typer.Option(
        "--format",
        "-f",
        metavar="FORMAT",
        help=f"Report formats, repeatable or comma-separated: {', '.join(FORMATS)} "
        "\\[default: all]",
        show_default=False,
    ),
]
OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        metavar="DIR",
        help="Folder for the reports \\[default: reports]",
        show_default=False,
    ),
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Every case's report; tracebacks of errors.")
]


def _fail(error: BaseException, verbose: bool) -> typer.Exit:
    """One line for a usage or import problem (the traceback with --verbose); exit code 2."""
    if verbose:
        err_console.print_exception()
    err_console.print(f"[bold red]error:[/] {escape(str(error))}")
    return typer.Exit(2)


def _settings(cli: dict[str, Any]) -> dict[str, Any]:
    """Command-line values over ``[tool.gradcheck]`` over the built-in defaults."""
    stored, note = project_config.load(Path.cwd())
    if note:
        err_console.print(f"[dim]{escape(note)}[/]")
    given = {k: v for k, v in cli.items() if v not in (None, [])}
    return {
        "format": list(FORMATS),
        "out": "reports",
        "select": [],
        "ignore": [],
        "jobs": 1,
        "timeout": 300.0,
        **stored,
        **given,
    }


def _case_line(outcome: CaseOutcome) -> str:
    style = STYLES.get(outcome.status, "bold red")
    detail = f" — {escape(outcome.message)}" if outcome.status != "pass" else ""
    return (
        f"[{style}]{outcome.status.upper():<17}[/] {escape(outcome.name)}"
        f" [dim]({outcome.duration:.2f} s)[/]{detail}"
    )


def _publish(run: Run, out: Path, formats: tuple[str, ...], verbose: bool) -> None:
    """Write the report files, the GitHub step summary and annotations; print the findings."""
    for outcome in run.outcomes if verbose else run.findings:
        if outcome.text:
            out_console.print(f"\n[bold]{escape(outcome.name)}[/]")
            out_console.print(escape(outcome.text))
    paths = write_reports(run, out, formats)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(to_markdown(run))
    if os.environ.get("GITHUB_ACTIONS") == "true":
        sys.stdout.write(github_annotations(run))
        sys.stdout.flush()
    style = "bold yellow" if run.partial else "bold red" if run.findings else "bold green"
    out_console.print(f"\n[{style}]{escape(run.headline())}[/]")
    if paths:
        out_console.print("reports: " + ", ".join(escape(str(p)) for p in paths))


class _Progress:
    """A progress bar on a terminal; one plain line per case otherwise (CI logs, pipes)."""

    def __init__(self, units: int) -> None:
        self._lock = threading.Lock()
        self._bar: Progress | None = None
        if out_console.is_terminal:
            self._bar = Progress(
                TextColumn("auditing"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("modules · {task.fields[cases]} cases"),
                TimeElapsedColumn(),
                console=out_console,
                transient=True,
            )
            self._task = self._bar.add_task("audit", total=units, cases=0)
        self._cases = 0

    def __enter__(self) -> _Progress:
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar:
            self._bar.stop()

    def case(self, outcome: CaseOutcome) -> None:
        """One line per case (above the bar on a terminal)."""
        with self._lock:
            out_console.print(_case_line(outcome))
            self._cases += 1
            if self._bar:
                self._bar.update(self._task, cases=self._cases)

    def unit(self, unit: Unit) -> None:
        """A module is done: the bar advances."""
        with self._lock:
            if self._bar:
                self._bar.advance(self._task)


@app.command()
def audit(
    targets: Annotated[
        list[str],
        typer.Argument(
            metavar="TARGET", help="Python files, folders (their .py files) or dotted modules."
        ),
    ],
    mode: Annotated[
        Mode | None,
        typer.Option(help="full: every Jacobian entry; fast: random projections \\[default: full]"),
    ] = None,
    formats: FormatOption = None,
    out: OutOption = None,
    select: Annotated[
        list[str] | None,
        typer.Option(
            metavar="PATTERN",
            help="Run only cases whose name matches this shell pattern (repeatable).",
        ),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option(
            metavar="PATTERN",
            help="Leave out cases whose name matches this shell pattern (repeatable).",
        ),
    ] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes \\[default: 1]")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=0.001, help="Seconds a case may take before it is an error \\[default: 300]"
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of random directions and cotangents \\[default: 0]")
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Audit modules: run every [cyan]@gradcheck.case[/] and check what can be discovered.

    Discovered: [cyan]torch.autograd.Function[/] subclasses, [cyan]torch.library.custom_op[/]
    ops with an autograd formula, [cyan]jax.custom_vjp/custom_jvp[/] functions,
    [cyan]tf.custom_gradient[/] functions, torch modules and Keras layers and models (instances,
    and classes constructible without arguments), at synthesised inputs. What cannot be
    checked is listed as skipped, with the reason. Each case runs in a worker process: an
    exception, a hang past --timeout or a crash is an error for that case only.

    Exit codes: 0 all pass, 1 findings, 2 usage or import error, 130 interrupted.
    """
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.perf_counter()
    try:
        settings = _settings(
            {
                "mode": mode.value if mode else None,
                "format": formats,
                "out": out,
                "select": select,
                "ignore": ignore,
                "jobs": jobs,
                "timeout": timeout,
                "seed": seed,
            }
        )
        chosen = check_formats(settings["format"])
        units = resolve(targets)
    except GradcheckError as error:
        raise _fail(error, verbose) from None
    if not units:
        raise _fail(GradcheckError(f"no Python files to audit in {' '.join(targets)}"), verbose)
    defaults = {k: settings[k] for k in ("mode", "seed") if settings.get(k) is not None}
    options = Options(
        defaults,
        float(settings["timeout"]),
        int(settings["jobs"]),
        tuple(settings["select"]),
        tuple(settings["ignore"]),
    )
    with _Progress(len(units)) as progress:
        runner = Audit(options, progress.case, progress.unit)
        outcomes = runner.run(units)
    meta: dict[str, Any] = {
        "gradcheck": __version__,
        "command": shlex.join(["gradcheck", "audit", *targets]),
        "mode": settings.get("mode", "full"),
        "seed": settings.get("seed", 0),
        "jobs": options.jobs,
        "started": started.isoformat(timespec="seconds"),
        "duration": round(time.perf_counter() - clock, 3),
        "python": platform.python_version(),
    }
    if runner.unimportable:
        meta["unimportable"] = runner.unimportable
    run = Run(tuple(outcomes), runner.interrupted, meta)
    _publish(run, Path(settings["out"]), chosen, verbose)
    if runner.interrupted:
        raise typer.Exit(INTERRUPTED)
    if runner.unimportable:
        raise typer.Exit(2)
    raise typer.Exit(1 if run.findings else 0)


@app.command()
def report(
    results: Annotated[
        list[Path],
        typer.Argument(
            metavar="RESULTS.json", help="JSON results of audits or pytest runs, to merge."
        ),
    ],
    formats: FormatOption = None,
    out: OutOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Merge results (pytest-xdist workers, CI shards) and write them in every format.

    A case in several files keeps its last outcome. Exit codes: 0 no findings, 1 findings,
    2 usage error (a file missing or not gradcheck results).
    """
    try:
        settings = _settings({"format": formats, "out": out})
        chosen = check_formats(settings["format"])
        runs = []
        for path in results:
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as error:
                raise GradcheckError(f"{path}: {error.strerror}") from None
            try:
                runs.append(read_json(text))
            except GradcheckError as error:
                raise GradcheckError(f"{path}: {error}") from None
    except GradcheckError as error:
        raise _fail(error, verbose) from None
    run = merge(runs)
    _publish(run, Path(settings["out"]), chosen, verbose)
    raise typer.Exit(1 if run.findings else 0)


def main() -> None:
    """The console script: ``gradcheck …`` and ``python -m gradcheck …``."""
    app(prog_name="gradcheck")
