"""``[tool.gradcheck]`` in the nearest pyproject.toml: project defaults for `gradcheck audit`.

Example::

    [tool.gradcheck]
    mode = "fast"
    format = ["json", "junit"]
    out = "build/gradcheck"
    ignore = ["*::slow_*"]
    jobs = 2
    timeout = 120
    seed = 0

The command line wins over the file. The file is the first ``pyproject.toml`` found from the
working folder upwards; paths in it (``out``) are relative to its folder. Unknown keys and
wrong types are usage errors, so that a typo does not silently change nothing. Python 3.10
has no `tomllib`: there, ``tomli`` is used if installed, else the file is ignored with a note.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .. import UsageError

# key -> the types its value may have
KEYS: dict[str, tuple[type, ...]] = {
    "mode": (str,),
    "format": (str, list),
    "out": (str,),
    "select": (str, list),
    "ignore": (str, list),
    "jobs": (int,),
    "timeout": (int, float),
    "seed": (int,),
}


def find(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start`, None when there is none."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _toml() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    try:
        import tomli  # type: ignore[import-not-found]
    except ImportError:
        return None
    return tomli


def load(start: Path) -> tuple[dict[str, Any], str | None]:
    """The ``[tool.gradcheck]`` table (lists for list keys, ``out`` made absolute) and a note.

    The note says where the defaults came from, or why a file was ignored; None without one.

    Raises:
        UsageError: the file is not valid TOML, or the table has an unknown key or a bad type.
    """
    path = find(start)
    if path is None:
        return {}, None
    toml = _toml()
    if toml is None:
        return {}, f"{path}: [tool.gradcheck] ignored (Python 3.10 needs `pip install tomli`)"
    try:
        table = toml.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("gradcheck", {})
    except toml.TOMLDecodeError as error:
        raise UsageError(f"{path}: invalid TOML: {error}") from None
    if not table:
        return {}, None
    settings: dict[str, Any] = {}
    for key, value in table.items():
        if key not in KEYS:
            raise UsageError(
                f"{path}: unknown key {key!r} in [tool.gradcheck]; known: {', '.join(KEYS)}"
            )
        if not isinstance(value, KEYS[key]) or isinstance(value, bool):
            raise UsageError(f"{path}: [tool.gradcheck] {key} = {value!r} has the wrong type")
        if isinstance(value, list):
            value = [str(v) for v in value]
        elif list in KEYS[key]:
            value = [value]
        settings[key] = str((path.parent / value).resolve()) if key == "out" else value
    return settings, f"defaults from {path} [tool.gradcheck]"
