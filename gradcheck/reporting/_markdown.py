"""Markdown for ``$GITHUB_STEP_SUMMARY`` (GitHub-flavoured): counts, findings first, details folded.

User strings (case names, messages) are escaped so that they render as written: in Markdown
text every character Markdown or inline HTML could act on is backslash-escaped and line breaks
become spaces; inside raw HTML blocks (``<summary>``) they are HTML-escaped; report bodies
sit in fences longer than any backtick run in them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from ._records import CaseOutcome, Run, printable

_ACTIVE = re.compile(r"([\\`*_\[\]<>|~&])")
_ICONS = {"pass": "✅", "skipped": "⏭️", "error": "💥"}


def _cell(text: str) -> str:
    return _ACTIVE.sub(r"\\\1", " ".join(printable(text).split()))


def _status(status: str) -> str:
    return f"{_ICONS.get(status, '❌')} {status}"


def _fenced(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _details(outcome: CaseOutcome) -> list[str]:
    return [
        "<details>",
        # raw HTML: HTML escapes, not Markdown's
        f"<summary>{html.escape(printable(outcome.name))}: {_status(outcome.status)}</summary>",
        "",
        _fenced(printable(outcome.text or outcome.message)),
        "",
        "</details>",
        "",
    ]


def to_markdown(run: Run) -> str:
    """The run as GitHub-flavoured Markdown, newline-terminated.

    Example:
        >>> from gradcheck.reporting import CaseOutcome, Run
        >>> to_markdown(Run((CaseOutcome("f", "pass", 0.5),))).splitlines()[0]
        '## gradcheck: ✅ 1 case(s) pass'
    """
    findings, n = run.findings, len(run.outcomes)
    if findings:
        title = f"❌ {len(findings)} of {n} case(s) with findings"
    else:
        skipped = run.counts.get("skipped", 0)
        title = f"✅ {n - skipped} case(s) pass" + (f", {skipped} skipped" if skipped else "")
    lines = [f"## gradcheck: {title}", ""]
    if run.partial:
        lines += ["> [!WARNING]", "> The audit was interrupted: this report is partial.", ""]
    lines += _table(("status", "cases"), [(_status(s), str(k)) for s, k in run.counts.items()])
    lines.append("")
    if findings:
        lines += ["### Findings", ""]
        found = [(_cell(o.name), _status(o.status), _cell(o.message)) for o in findings]
        lines += [*_table(("case", "status", "message"), found), ""]
        for outcome in findings:
            lines += _details(outcome)
    left_out = [o for o in run.outcomes if o.status == "skipped"]
    if left_out:
        lines += ["### Skipped", ""]
        lines += _table(("case", "reason"), [(_cell(o.name), _cell(o.message)) for o in left_out])
        lines.append("")
    passed = [o for o in run.outcomes if o.status == "pass"]
    if passed:
        rows = [(_cell(o.name), f"{o.duration:.2f} s") for o in passed]
        lines += [f"<details><summary>{len(passed)} passing case(s)</summary>", ""]
        lines += [*_table(("case", "time"), rows), "", "</details>", ""]
    facts = " · ".join(_cell(f"{k}: {v}") for k, v in run.meta.items())
    if facts:
        lines += [f"<sub>{facts}</sub>", ""]
    return "\n".join(lines)
