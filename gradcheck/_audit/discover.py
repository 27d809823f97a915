"""Inside a worker: import one unit and list its candidates, declared cases first.

A candidate is one named thing to check. Declared cases (`gradcheck.case`) run as declared;
objects the audit recognises (`synth`) are checked at synthesised inputs, or skipped with the
reason. Names are ``<unit>::<qualified name>``, with the inputs appended in brackets where
one function has several cases (``log_sum_exp[x=[-3 0.1 2]]``), and a counter as a last
resort, so every name is unique within a run. Objects whose declaration lives in another
module (imported names) belong to that module's audit and are left out here.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .. import Report, check
from .._cases import Case, declared_cases
from .synth import Target, UnsynthesisableError, describe, inputs_for, recognise, source_line
from .targets import Unit, shown

Thunk = Callable[[dict[str, Any]], "Report | str"]  # check defaults -> a report or a skip reason


@dataclass(frozen=True)
class Candidate:
    """One thing to check: its unique name, where it is declared, and how to run it."""

    name: str
    file: str | None
    line: int | None
    run: Thunk


def load(unit: Unit) -> ModuleType:
    """Import the unit; a file under a name of its own, its folder first on `sys.path`."""
    if unit.module is not None:
        return importlib.import_module(unit.module)
    assert unit.path is not None
    path = Path(unit.path)
    name = f"gradcheck_audit_{path.stem}_{zlib.crc32(str(path).encode()):08x}"  # unique, stable
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look a module up by name
    sys.path.insert(0, str(path.parent))  # sibling modules import as they would when run
    spec.loader.exec_module(module)
    return module


def _declared(fn: Any, case: Case) -> Thunk:
    def run(defaults: dict[str, Any]) -> Report | str:
        return check(fn, *case.make_inputs(), **{**defaults, **case.options})

    return run


def _discovered(target: Target) -> Thunk:
    def run(defaults: dict[str, Any]) -> Report | str:
        try:
            inputs = inputs_for(target)
        except UnsynthesisableError as reason:
            return f"{target.kind}: {reason}"
        return check(target.fn, *inputs, **{**defaults, **target.options})

    return run


def _skip(reason: str) -> Thunk:
    return lambda defaults: reason


def _same_file(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and Path(a).resolve() == Path(b).resolve()


def candidates(unit: Unit, module: ModuleType) -> list[Candidate]:
    """Every candidate of the module, declared cases first, with unique names."""
    here = getattr(module, "__file__", None)
    found: list[tuple[str, str, Candidate]] = []  # (base name, inputs, candidate)
    checked: set[int] = set()
    for key, value in list(vars(module).items()):
        if id(value) in checked:
            continue  # one object under two names is checked once
        cases = [c for c in declared_cases(value) if _same_file(c.file, here)]
        for case in cases:
            inputs = "factory" if case.factory else describe(case.inputs, value)
            inputs = "" if case.skip is not None else inputs
            thunk = _skip(case.skip) if case.skip is not None else _declared(value, case)
            run = Candidate("", case.file, case.line, thunk)
            label = case.name or getattr(value, "__qualname__", None) or key
            found.append((str(label), inputs, run))
        if cases:
            checked.add(id(value))
    for key, value in list(vars(module).items()):
        if id(value) in checked:
            continue
        checked.add(id(value))
        try:
            target = recognise(value, module.__name__)
        except UnsynthesisableError as reason:
            file, line = source_line(value)
            found.append((key, "", Candidate("", file, line, _skip(str(reason)))))
            continue
        if target is not None:
            file, line = source_line(target.source)
            found.append((key, "", Candidate("", file, line, _discovered(target))))
    return _named(unit, found)


def _named(unit: Unit, found: list[tuple[str, str, Candidate]]) -> list[Candidate]:
    bases = Counter(base for base, _, _ in found)
    names = [f"{b}[{i}]" if bases[b] > 1 and i else b for b, i, _ in found]
    seen: Counter[str] = Counter()
    named = []
    for name, (_, _, candidate) in zip(names, found, strict=True):
        seen[name] += 1
        unique = name if seen[name] == 1 and names.count(name) == 1 else f"{name}#{seen[name]}"
        file = None if candidate.file is None else shown(candidate.file)
        named.append(Candidate(f"{unit.label}::{unique}", file, candidate.line, candidate.run))
    return named
