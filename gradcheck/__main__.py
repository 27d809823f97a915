"""`python -m gradcheck FILE...`: check every @gradcheck.case in the files, write a report.

Each case is checked on its own: a failing or crashing case is reported and the others still
run. The JSON report is written atomically (a temporary file renamed into place), so an
interrupted run never leaves a half-written report. Exit code 0 when every case passes, 1
when any has a finding or crashed, 2 for usage or import errors.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from ._cases import ATTRIBUTE, Case
from ._check import check
from ._errors import GradcheckError


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"gradcheck_audit_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _cases(module: Any) -> list[tuple[Any, Case]]:
    found = []
    for value in vars(module).values():
        found += [(value, c) for c in getattr(value, ATTRIBUTE, ())]
    return found


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    out = Path("reports/audit.json")
    if "--out" in args:
        i = args.index("--out")
        out = Path(args[i + 1])
        del args[i : i + 2]
    files = [Path(a) for a in args] or sorted(Path("examples").glob("*.py"))
    files = [f for p in files for f in (sorted(p.glob("*.py")) if p.is_dir() else [p])]
    if not files:
        print("usage: python -m gradcheck FILE_OR_DIR... [--out reports/audit.json]")
        return 2
    results: list[dict[str, Any]] = []
    for path in files:
        try:
            module = _load(path)
        except Exception as error:  # an import error is a usage problem for the whole run
            print(f"error: cannot import {path}: {error}", file=sys.stderr)
            return 2
        for fn, declared in _cases(module):
            entry: dict[str, Any] = {"file": str(path), "case": declared.name}
            try:
                report = check(fn, *declared.inputs, **declared.options)
                entry.update(report.to_dict())
                print(report)
            except (GradcheckError, Exception) as error:
                entry.update(
                    verdict="error",
                    passed=False,
                    error=f"{type(error).__name__}: {error}",
                    traceback=traceback.format_exc(),
                )
                print(f"gradcheck ERROR: {declared.name}: {type(error).__name__}: {error}")
            results.append(entry)
    passed = sum(r["passed"] for r in results)
    summary = {
        "schema": "gradcheck.audit",
        "version": 1,
        "passed": passed,
        "total": len(results),
        "cases": results,
    }
    _write_atomically(out, json.dumps(summary, indent=2, default=str))
    print(f"\n{passed} of {len(results)} cases pass; report written to {out}")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
