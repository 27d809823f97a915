"""Report files: written atomically, readable by others, one per format, formats validated."""

import stat

import pytest

from gradcheck import UsageError
from gradcheck.reporting import FORMATS, check_formats, read_json, write_atomic, write_reports

from .sample import sample_run


def test_write_atomic_leaves_a_readable_file_and_no_temporary(tmp_path):
    path = write_atomic(tmp_path / "deep" / "r.txt", "hello")
    assert path.read_text() == "hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["r.txt"]


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path):
    path = write_atomic(tmp_path / "r.txt", "old")
    with pytest.raises(TypeError):
        write_atomic(path, None)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.txt"]


def test_write_reports_writes_each_format_once(tmp_path):
    paths = write_reports(sample_run(), tmp_path, ["json,md", "json"])
    assert [p.name for p in paths] == ["gradcheck.json", "gradcheck.md"]
    assert read_json(paths[0].read_text()) == sample_run()


def test_formats_are_validated():
    assert check_formats(["json, junit", "html"]) == ("json", "junit", "html")
    assert set(FORMATS) == {"json", "junit", "md", "html"}
    with pytest.raises(UsageError, match="unknown report format 'pdf'"):
        check_formats(["pdf"])
