"""The exceptions gradcheck raises.

Findings about a gradient are verdicts in a `Report`, never exceptions; these are for the
two cases where there is no verdict to give: a failed assertion and a wrong call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._results import Report


class GradcheckError(Exception):
    """Root of every exception gradcheck raises itself."""


class UsageError(GradcheckError, ValueError):
    """Bad arguments or unsupported inputs: the message names the problem and the fix."""


class GradientError(GradcheckError, AssertionError):
    """Raised by `assert_grad` when the verdict is not "pass"; carries the full report.

    It subclasses AssertionError so that pytest shows it as a failed assertion.
    """

    def __init__(self, report: Report) -> None:
        super().__init__(str(report))
        self.report = report


class ForeignOutputError(UsageError):
    """fn, detected as NumPy code from its inputs, returns another framework's arrays (a
    closure over a Keras model called with NumPy inputs); `framework` names that framework,
    so that the check can bind it there instead."""

    def __init__(self, message: str, framework: str) -> None:
        super().__init__(message)
        self.framework = framework


# Public names: tracebacks and pytest print `gradcheck.GradientError`, where users import it.
for _error in (GradcheckError, UsageError, GradientError):
    _error.__module__ = "gradcheck"
