"""Writing reports to disk: atomically, readable by everyone, one file per format."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from .. import UsageError
from ._html import to_html
from ._json import to_json
from ._junit import to_junit
from ._markdown import to_markdown
from ._records import Run

# Format name -> (file name, writer). The file names are stable: CI configurations point at them.
FORMATS: dict[str, tuple[str, Callable[[Run], str]]] = {
    "json": ("gradcheck.json", to_json),
    "junit": ("gradcheck.junit.xml", to_junit),
    "md": ("gradcheck.md", to_markdown),
    "html": ("gradcheck.html", to_html),
}


def write_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` through a temporary file renamed into place, mode 0644.

    A reader (or an interrupted run) sees the old file or the new one, never half of one; no
    temporary file is left behind, even on an exception.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """The formats, validated and deduplicated in order; comma-separated items are split.

    Raises:
        UsageError: a format is not one of `FORMATS`.
    """
    names = [f.strip() for item in formats for f in item.split(",") if f.strip()]
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise UsageError(f"unknown report format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(names))


def write_reports(run: Run, out_dir: str | os.PathLike[str], formats: Iterable[str]) -> list[Path]:
    """Write the run in each format into `out_dir` (created if needed); the paths written."""
    return [
        write_atomic(Path(out_dir) / FORMATS[name][0], FORMATS[name][1](run))
        for name in check_formats(formats)
    ]
