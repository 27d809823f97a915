"""What a check returns: verdicts with their evidence, as frozen values.

A `Report` is the whole answer for one function at one point; it holds one `CheckResult` per
kind of check, each with the tolerance and step it used and its worst entries. `to_dict()` is
the versioned JSON form every report writer starts from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal[
    "pass", "fail", "nondifferentiable", "nonfinite", "nondeterministic", "inconclusive"
]
Kind = Literal[
    "vjp",
    "jvp",
    "adjoint",
    "hvp",
    "surrogate",
    "taylor",
    "dtype",
    "undefined_grad",
    "batched_grad",
]

SCHEMA_VERSION = 1

# When checks disagree, the report shows the most actionable verdict: nothing is trustworthy
# if the function is nondeterministic; NaN gradients are a bug whatever the rest says; a clear
# mismatch at a differentiable point beats a kink elsewhere; "inconclusive" is never a pass.
SEVERITY: dict[str, int] = {
    "nondeterministic": 5,
    "nonfinite": 4,
    "fail": 3,
    "nondifferentiable": 2,
    "inconclusive": 1,
    "pass": 0,
}


def worst_verdict(verdicts: list[Verdict]) -> Verdict:
    """The verdict that wins when checks disagree (see SEVERITY); "pass" for none."""
    return max(verdicts, key=SEVERITY.__getitem__, default="pass")


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How agreement was judged (Note: Error budget in `_compare`).

    |analytic - numeric| <= safety·(bound - noise + rounding) + noise_safety·noise
                            + atol + rtol·|numeric|

    `bound` is the finite-difference error estimate of the entry, `noise` its round-off part
    and `rounding` the round-off model of the analytic value; user `rtol`/`atol` add to it
    (0 unless given).
    """

    safety: float
    noise_safety: float
    atol: float = 0.0
    rtol: float = 0.0


@dataclass(frozen=True, slots=True)
class Step:
    """The finite-difference step behind an estimate; `error` None where it cannot be trusted."""

    size: float
    error: float | None


@dataclass(frozen=True, slots=True)
class Evidence:
    """One compared entry: where, both values, and how far apart they may honestly be."""

    where: str
    analytic: float
    numeric: float
    bound: float  # error bound of the numeric estimate
    tolerance: float  # the allowed |analytic - numeric| for this entry
    step: float
    curve: tuple[tuple[float, float], ...] = ()  # (step, estimate) around `step`: the V curve

    @property
    def difference(self) -> float:
        return abs(self.analytic - self.numeric)

    def describe(self) -> str:
        return (
            f"{self.where}: analytic={self.analytic:.10g} numeric={self.numeric:.10g}"
            f"±{self.bound:.2g} |diff|={self.difference:.3g} tol={self.tolerance:.3g}"
            f" step={self.step:.3g}"
        )


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One kind of check: its verdict, a one-line message, and the worst entries first."""

    kind: Kind
    verdict: Verdict
    message: str
    tolerance: Tolerance | None = None
    step: Step | None = None
    worst: tuple[Evidence, ...] = ()
    order: int = 1
    entries: int = 0  # how many entries were compared
    evaluations: int = 0  # function evaluations spent on finite differences
    cause: str | None = None  # the likely cause of a failure, where one fits
    route: str | None = None  # "reverse" or "forward" where one kind has both (surrogate, hvp)
    remainders: tuple[dict[str, Any], ...] = ()  # Taylor remainders r(h) of reviewed entries
    histogram: dict[str, Any] | None = None  # log10(|diff|/tol) of every entry, per leaf

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "route": self.route,
            "order": self.order,
            "verdict": self.verdict,
            "message": self.message,
            "cause": self.cause,
            "entries": self.entries,
            "evaluations": self.evaluations,
            "tolerance": None
            if self.tolerance is None
            else {
                "safety": self.tolerance.safety,
                "noise_safety": self.tolerance.noise_safety,
                "atol": self.tolerance.atol,
                "rtol": self.tolerance.rtol,
            },
            "step": None
            if self.step is None
            else {"size": self.step.size, "error": self.step.error},
            "worst": [
                {
                    "where": e.where,
                    "analytic": e.analytic,
                    "numeric": e.numeric,
                    "bound": e.bound,
                    "tolerance": e.tolerance,
                    "step": e.step,
                    **(
                        {
                            "curve": {
                                "step": [h for h, _ in e.curve],
                                "estimate": [v for _, v in e.curve],
                            }
                        }
                        if e.curve
                        else {}
                    ),
                }
                for e in self.worst
            ],
            **({"remainders": list(self.remainders)} if self.remainders else {}),
            **({"histogram": self.histogram} if self.histogram else {}),
        }


@dataclass(frozen=True, slots=True)
class Report:
    """The answer for one function at one point.

    Attributes:
        name: what was checked (the function's qualified name).
        framework: the adapter that ran it.
        verdict: the most severe verdict among the checks (see SEVERITY).
        checks: one result per kind of check, in the order they ran.
        notes: facts worth knowing that are not findings (skipped modes, pass-through inputs).
        mode, order, seed: the options the check ran with.
    """

    name: str
    framework: str
    verdict: Verdict
    checks: tuple[CheckResult, ...]
    notes: tuple[str, ...] = ()
    mode: str = "full"
    order: int = 1
    seed: int = 0
    inputs: tuple[str, ...] = field(default=())  # the checked leaves, with shapes and dtypes

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def evaluations(self) -> int:
        return sum(c.evaluations for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "gradcheck.report",
            "version": SCHEMA_VERSION,
            "name": self.name,
            "framework": self.framework,
            "verdict": self.verdict,
            "passed": self.passed,
            "mode": self.mode,
            "order": self.order,
            "seed": self.seed,
            "inputs": list(self.inputs),
            "notes": list(self.notes),
            "checks": [c.to_dict() for c in self.checks],
        }

    def __str__(self) -> str:
        from .reporting._text import report_text  # the text format lives with the others

        return report_text(self)
