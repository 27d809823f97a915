"""pytest plugin for gradcheck (the fixture and options come with the pytest-plugin issue).

At module level it imports nothing but the standard library and pytest, so plain pytest runs
pay nothing for it.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def gradcheck() -> Any:
    """gradcheck's asserting checker: `gradcheck(fn, *inputs, **options)` returns the report
    or raises gradcheck.GradientError (an AssertionError) with the evidence."""
    import gradcheck as gc

    return gc.assert_grad
