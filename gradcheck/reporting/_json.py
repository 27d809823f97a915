"""The JSON form of a run: versioned, and read back losslessly by `read_json`."""

from __future__ import annotations

import json
from typing import Any

from .. import UsageError
from ._records import CaseOutcome, Run

SCHEMA = "gradcheck.run"
VERSION = 1


def to_json(run: Run) -> str:
    """The run as indented JSON text (schema ``gradcheck.run``, version 1), newline-terminated.

    Example:
        >>> from gradcheck.reporting import Run, read_json
        >>> read_json(to_json(Run(()))) == Run(())
        True
    """
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "version": VERSION,
        "partial": run.partial,
        "meta": run.meta,
        "counts": run.counts,
        "outcomes": [o.to_dict() for o in run.outcomes],
    }
    return json.dumps(data, indent=2, allow_nan=True) + "\n"


def read_json(text: str) -> Run:
    """The run written by `to_json`.

    Raises:
        UsageError: the text is not JSON, not a gradcheck run, or of a newer version.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"not a gradcheck results file: invalid JSON ({error})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UsageError(f"not a gradcheck results file: the schema is not {SCHEMA!r}")
    if data.get("version") != VERSION:
        raise UsageError(
            f"gradcheck results version {data.get('version')!r} cannot be read by this "
            f"gradcheck (it reads version {VERSION})"
        )
    try:
        outcomes = tuple(CaseOutcome.from_dict(o) for o in data["outcomes"])
    except (KeyError, TypeError, ValueError) as error:
        raise UsageError(f"malformed gradcheck results file: {error}") from None
    return Run(outcomes, bool(data.get("partial", False)), dict(data.get("meta") or {}))
