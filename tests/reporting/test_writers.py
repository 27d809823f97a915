"""Every writer against its golden file, and the properties each format promises.

Golden files live in tests/golden/. After a deliberate change of a format, regenerate them
with ``GRADCHECK_UPDATE_GOLDEN=1 pytest tests/reporting`` and review the diff.
"""

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gradcheck import UsageError
from gradcheck.reporting import (
    CaseOutcome,
    Run,
    github_annotations,
    merge,
    read_json,
    to_html,
    to_json,
    to_junit,
    to_markdown,
)

from .sample import HOSTILE, sample_run

GOLDEN = Path(__file__).parent.parent / "golden"
WRITERS = {
    "run.json": to_json,
    "run.junit.xml": to_junit,
    "run.md": to_markdown,
    "run.html": lambda run: to_html(run, draw_plots=False),
    "run.github.txt": github_annotations,
}


@pytest.mark.parametrize("partial", [False, True], ids=["complete", "partial"])
@pytest.mark.parametrize("name", sorted(WRITERS))
def test_writer_matches_its_golden_file(name, partial):
    text = WRITERS[name](sample_run(partial))
    golden = GOLDEN / (name.replace("run.", "run.partial.") if partial else name)
    if os.environ.get("GRADCHECK_UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_json_round_trips():
    run = sample_run(partial=True)
    assert read_json(to_json(run)) == run
    assert json.loads(to_json(run))["counts"] == {
        "pass": 1,
        "fail": 1,
        "nonfinite": 1,
        "error": 1,
        "skipped": 1,
    }


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("{", "invalid JSON"),
        ('{"schema": "other"}', "schema"),
        ('{"schema": "gradcheck.run", "version": 99, "outcomes": []}', "version 99"),
        ('{"schema": "gradcheck.run", "version": 1, "outcomes": [{"name": "x"}]}', "malformed"),
    ],
)
def test_read_json_refuses_what_it_cannot_read(text, complaint):
    with pytest.raises(UsageError, match=complaint):
        read_json(text)


def test_an_unknown_status_is_refused():
    with pytest.raises(ValueError, match="unknown status"):
        CaseOutcome("x", "passed", 0.0)


def test_junit_counts_and_escaping():
    root = ET.fromstring(to_junit(sample_run()))
    suite = root.find("testsuite")
    assert suite is not None
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "5",
        "failures": "2",
        "errors": "1",
        "skipped": "1",
    }
    cases = suite.findall("testcase")
    assert [c.get("classname") for c in cases][:2] == ["examples.losses", "examples.losses"]
    error = cases[2].find("error")
    assert error is not None
    assert "<script>" in (error.get("message") or "")  # escaped in the file, intact when parsed
    assert "\x1b" not in (error.text or "")  # not allowed in XML 1.0: replaced
    assert cases[1].find("failure").get("type") == "fail"
    assert cases[3].find("skipped").get("message").startswith("Net() needs")
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["gradcheck"] == "0.1.0"
    assert properties["partial"] == "false"


def test_markdown_escapes_user_strings_and_fences_bodies():
    text = to_markdown(sample_run())
    outside_fences = text.split("````")[0::2]  # a fenced body is shown as written, safely
    assert not any("<script>" in part for part in outside_fences)
    assert "\\<script\\>" in text  # table cell: backslash-escaped
    assert "&lt;script&gt;" in text  # <summary>: HTML-escaped
    assert "````text" in text  # the body holds ``` so its fence is longer
    assert text.startswith("## gradcheck: ❌ 3 of 5 case(s) with findings")


def test_html_escapes_user_strings():
    page = to_html(sample_run(), draw_plots=False)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_html_draws_the_plots_the_report_has_data_for():
    pytest.importorskip("matplotlib")
    page = to_html(sample_run())
    captions = [
        "worst entries against their tolerance",
        "error against step (V curve)",
        "Taylor remainder",
        "error per input or parameter",
    ]
    for caption in captions:
        assert page.count(f"<figcaption>{caption}</figcaption>") == 1  # the failing case only
    assert page.count("<svg") == 4
    assert to_html(sample_run()) == page  # deterministic, so reports diff cleanly


def test_github_annotations_point_at_the_declaration():
    lines = github_annotations(sample_run()).splitlines()
    assert lines[0] == (
        "::error file=examples/losses.py,line=20,title=gradcheck fail%3A "
        "examples/losses.py%3A%3Asoftplus[x=[-1 0.5 3]]::vjp: 3 of 3 entries differ"
    )
    assert lines[2].startswith("::error title=gradcheck nonfinite")  # no file: no location
    assert len(lines) == 3
    assert github_annotations(sample_run(partial=True)).splitlines()[-1].startswith("::warning")


def test_merge_keeps_order_replaces_reruns_and_propagates_partial():
    first = sample_run()
    rerun = CaseOutcome("examples/losses.py::softplus[x=[-1 0.5 3]]", "pass", 0.5)
    extra = CaseOutcome("other.py::f", "pass", 0.1)
    second = Run((rerun, extra), True, {"started": "2026-01-01T00:00:00+00:00", "duration": 2.0})
    merged = merge([first, second])
    assert [o.name for o in merged.outcomes] == [*(o.name for o in first.outcomes), extra.name]
    assert merged.outcomes[1] == rerun
    assert merged.partial
    assert merged.meta["started"] == "2026-01-01T00:00:00+00:00"
    assert merged.meta["duration"] == 3.875
    assert merged.meta["merged"] == 2


def test_headline():
    assert sample_run().headline() == (
        "gradcheck: 5 case(s), 3 finding(s) (pass 1, fail 1, nonfinite 1, error 1, skipped 1)"
    )
    assert HOSTILE in sample_run().outcomes[2].name


def test_markdown_title_of_a_clean_run_counts_skipped_apart():
    clean = Run((CaseOutcome("a.py::f", "pass", 0.1), CaseOutcome("a.py::G", "skipped", 0.0)))
    assert to_markdown(clean).splitlines()[0] == "## gradcheck: ✅ 1 case(s) pass, 1 skipped"
