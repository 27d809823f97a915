"""JUnit XML: one ``<testcase>`` per case, in the xunit2 shape Jenkins and GitLab both read.

The shape is pytest's ``junit_family=xunit2`` (the strict one): run facts as ``<properties>``
of the one ``<testsuite>``, ``classname`` from the file the case is declared in, a finding as
``<failure type="<verdict>">`` with the report's text, a crash or exception as ``<error>``, an
uncheckable object as ``<skipped>``. Text is escaped by ElementTree; characters XML 1.0 cannot
hold at all (control characters from a traceback) are replaced first.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from ._records import CaseOutcome, Run
from ._records import printable as _clean


def _split(name: str) -> tuple[str, str]:
    """(classname, name): ``dir/mod.py::case`` becomes ``("dir.mod", "case")``, as in pytest."""
    where, sep, case = name.partition("::")
    if not sep:
        return "gradcheck", name
    stem = where[:-3] if where.endswith(".py") else where
    return stem.strip("/").replace("/", "."), case


def _testcase(outcome: CaseOutcome) -> ET.Element:
    classname, name = _split(outcome.name)
    element = ET.Element(
        "testcase",
        {"classname": _clean(classname), "name": _clean(name), "time": f"{outcome.duration:.3f}"},
    )
    message = _clean(outcome.message)
    if outcome.status == "skipped":
        ET.SubElement(element, "skipped", {"type": "skipped", "message": message})
    elif outcome.status == "error":
        ET.SubElement(element, "error", {"type": "error", "message": message}).text = _clean(
            outcome.text
        )
    elif outcome.finding:
        ET.SubElement(
            element, "failure", {"type": outcome.status, "message": message}
        ).text = _clean(outcome.text)
    return element


def to_junit(run: Run) -> str:
    """The run as a JUnit XML document (UTF-8 declaration, two-space indent, final newline).

    Example:
        >>> from gradcheck.reporting import CaseOutcome, Run
        >>> "<skipped" in to_junit(Run((CaseOutcome("a.py::f", "skipped", 0.0),)))
        True
    """
    counts = run.counts
    skipped = counts.get("skipped", 0)
    errors = counts.get("error", 0)
    totals = {
        "name": "gradcheck",
        "tests": str(len(run.outcomes)),
        "failures": str(len(run.findings) - errors),
        "errors": str(errors),
        "skipped": str(skipped),
        "time": f"{run.duration:.3f}",
    }
    suites = ET.Element("testsuites", totals)
    suite = ET.SubElement(suites, "testsuite", totals)
    if run.meta.get("started"):
        suite.set("timestamp", _clean(str(run.meta["started"])))
    properties = ET.SubElement(suite, "properties")
    facts = {**run.meta, "partial": run.partial}
    for key, value in facts.items():
        text = value if isinstance(value, str) else json.dumps(value)
        ET.SubElement(properties, "property", {"name": _clean(str(key)), "value": _clean(text)})
    suite.extend(_testcase(o) for o in run.outcomes)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, "unicode") + "\n"
