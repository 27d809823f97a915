"""GitHub Actions workflow commands: one ``::error`` annotation per finding, at its line."""

from __future__ import annotations

from ._records import Run, printable


def _data(text: str) -> str:
    # The escapes of @actions/core's issueCommand: a message may hold any text.
    return printable(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(run: Run) -> str:
    """``::error file=…,line=…,title=…::message`` lines for every finding, newline-terminated.

    Printed to stdout under ``GITHUB_ACTIONS=true``, GitHub shows them on the pull request at
    the line that declares the case. A partial run adds a ``::warning`` saying so.

    Example:
        >>> from gradcheck.reporting import CaseOutcome, Run
        >>> print(github_annotations(Run((CaseOutcome("f", "fail", 0.1, "a.py", 3, None, "off"),))))
        ::error file=a.py,line=3,title=gradcheck fail%3A f::off
        <BLANKLINE>
    """
    lines = []
    for outcome in run.findings:
        where = [f"file={_property(outcome.file)}"] if outcome.file else []
        if outcome.file and outcome.line:
            where.append(f"line={outcome.line}")
        where.append(f"title={_property(f'gradcheck {outcome.status}: {outcome.name}')}")
        lines.append(f"::error {','.join(where)}::{_data(outcome.message or outcome.status)}")
    if run.partial:
        lines.append("::warning title=gradcheck::the audit was interrupted; the report is partial")
    return "".join(f"{line}\n" for line in lines)
