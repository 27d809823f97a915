"""Reports of audits: plain records, and pure writers from a `Run` to the text of each format.

`CaseOutcome` and `Run` hold JSON-ready data only, so pytest-xdist workers and CI shards can
send them as JSON (`to_json` / `read_json`) and `merge` them. Each writer is a pure function
``Run -> str``; `write_reports` puts them on disk atomically (`write_atomic`). Writers:

- `to_json`: the versioned results file (schema ``gradcheck.run``), read back by `read_json`;
- `to_junit`: JUnit XML (xunit2) for Jenkins, GitLab and other CI test views;
- `to_markdown`: GitHub-flavoured Markdown for ``$GITHUB_STEP_SUMMARY``;
- `to_html`: one self-contained page with inline SVG plots (matplotlib, the ``plots`` extra);
- `github_annotations`: ``::error file=…,line=…::`` workflow commands for GitHub Actions;
- `report_text`: the human-readable text of one `gradcheck.Report` (what ``print`` shows).

Example:
    >>> from gradcheck.reporting import CaseOutcome, Run, read_json, to_json
    >>> run = Run((CaseOutcome("losses.py::softplus", "fail", 0.2, "losses.py", 12),))
    >>> read_json(to_json(run)) == run
    True
"""

from ._files import FORMATS, check_formats, write_atomic, write_reports
from ._github import github_annotations
from ._html import to_html
from ._json import read_json, to_json
from ._junit import to_junit
from ._markdown import to_markdown
from ._records import STATUSES, VERDICTS, CaseOutcome, Run, merge, summary_line
from ._text import report_text

__all__ = [
    "FORMATS",
    "STATUSES",
    "VERDICTS",
    "CaseOutcome",
    "Run",
    "check_formats",
    "github_annotations",
    "merge",
    "read_json",
    "report_text",
    "summary_line",
    "to_html",
    "to_json",
    "to_junit",
    "to_markdown",
    "write_atomic",
    "write_reports",
]
