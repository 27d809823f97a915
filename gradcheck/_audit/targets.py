"""What an audit covers: TARGET arguments resolved to units (one importable module each).

A unit is the smallest thing a worker imports: a Python file or a dotted module. A folder
stands for the ``.py`` files directly in it; its subfolders are separate targets on purpose,
so that ``gradcheck audit examples/`` leaves ``examples/buggy/`` out. Test files
(``test_*.py``, ``*_test.py``, ``conftest.py``) are pytest's to run and are left out of
folders. A dotted package stands for the package and its submodules. Resolution imports
nothing: `importlib.util.find_spec` locates a dotted module's file without running it
(only its parent packages), which keeps the audit's own process free of frameworks.
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
from dataclasses import dataclass
from pathlib import Path

from .. import UsageError


@dataclass(frozen=True)
class Unit:
    """One module to import in a worker.

    Attributes:
        path: the file, for a file target; None for a dotted module.
        module: the dotted name, for a module target; None for a file.
        label: how reports name it (a path relative to the working folder, or the dotted name).
    """

    path: str | None
    module: str | None
    label: str


def _is_test(path: Path) -> bool:
    return (
        path.name.startswith("test_") or path.stem.endswith("_test") or path.name == "conftest.py"
    )


def shown(path: str | os.PathLike[str]) -> str:
    """A path as reports show it: relative to the working folder when inside it.

    CI annotations need paths relative to the checkout, where the audit runs.
    """
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def _file_unit(path: Path) -> Unit:
    return Unit(str(path.resolve()), None, shown(path))


def _module_units(name: str) -> list[Unit]:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as error:
        raise UsageError(f"cannot find module {name!r}: {error}") from None
    if spec is None:
        raise UsageError(f"{name!r} is neither a file, a folder nor an importable module")
    return [Unit(None, m, m) for m in [name, *_submodules(name, spec.submodule_search_locations)]]


def _submodules(package: str, locations: list[str] | None) -> list[str]:
    """Dotted names of a package's submodules, found on disk (pkgutil.walk_packages imports)."""
    names = []
    for location in locations or []:
        for info in pkgutil.iter_modules([location]):
            name = f"{package}.{info.name}"
            names.append(name)
            if info.ispkg:
                names += _submodules(name, [os.path.join(location, info.name)])
    return names


def resolve(targets: list[str]) -> list[Unit]:
    """The units the targets stand for, in order, each once.

    Raises:
        UsageError: a target is not an existing ``.py`` file, a folder or a findable module.
    """
    units: list[Unit] = []
    for target in targets:
        path = Path(target)
        if path.is_dir():
            units += [_file_unit(p) for p in sorted(path.glob("*.py")) if not _is_test(p)]
        elif path.is_file():
            if path.suffix != ".py":
                raise UsageError(f"{target}: not a Python file")
            units.append(_file_unit(path))
        elif os.sep in target or "/" in target or target.endswith(".py"):
            raise UsageError(f"{target}: no such file or folder")
        else:
            units += _module_units(target)
    return list(dict.fromkeys(units))
