"""Check analytic gradients against finite differences, for any array framework."""

from ._cases import case
from ._check import assert_grad, check
from ._errors import GradcheckError, GradientError, UsageError
from ._fd import Derivative, FiniteDifference, backward, central, derivative, forward
from ._results import CheckResult, Evidence, Report, Step, Tolerance

__all__ = [
    "CheckResult",
    "Derivative",
    "Evidence",
    "FiniteDifference",
    "GradcheckError",
    "GradientError",
    "Report",
    "Step",
    "Tolerance",
    "UsageError",
    "__version__",
    "assert_grad",
    "backward",
    "case",
    "central",
    "check",
    "derivative",
    "forward",
]
__version__ = "0.1.0"
