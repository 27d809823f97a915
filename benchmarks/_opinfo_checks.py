"""One OpInfo sample, built as PyTorch's TestGradients builds it, checked by three checkers.

PyTorch's `TestGradients._check_helper` (torch/testing/_internal/common_utils.py) turns a
`SampleInput` into a function of the tensors that require grad only (TensorLists flattened),
with every other argument captured in a closure, and calls `op.gradcheck_wrapper` and
`sample.output_process_fn_grad` on the way. This module rebuilds exactly that function and
runs `torch.autograd.gradcheck` (slow mode, the suite's options), `gc.check(mode="full")` and
`gc.check(mode="fast")` on it, each on its own clone of the sample, each under a time cap and
with torch's global state (default dtype, grad mode, RNG) restored afterwards, so that one
sample's exception or side effect cannot change what the next one measures.
"""

from __future__ import annotations

import contextlib
import random
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.autograd.gradcheck import GradcheckError
from torch.testing._internal.common_utils import is_iterable_of_tensors

import gradcheck as gc

SEED = 1234  # torch.testing._internal.common_utils.SEED, what TestCase.setUp seeds with
CHECKERS = ("torch", "full", "fast")
FORWARD_TEST = ("TestFwdGradients", "test_forward_mode_AD")
BACKWARD_TEST = ("TestGradients", "test_fn_grad")


class CheckTimeout(BaseException):  # a BaseException: see the docstring
    """Raised by the alarm when a check runs past its cap.

    A BaseException, so that the checkers' own `except Exception` handlers (gc.check treats
    exceptions at points it chose like non-finite values) cannot swallow it.
    """


def full_name(op: Any) -> str:
    """The OpInfo's name as PyTorch's test ids spell it: `name` or `name.variant`."""
    return f"{op.name}.{op.variant_test_name}" if op.variant_test_name else op.name


def autograd_ops() -> list[Any]:
    """Every op of op_db that TestGradients checks in float64 on CPU."""
    from torch.testing._internal.common_methods_invocations import op_db

    return [
        op
        for op in op_db
        if op.supports_autograd
        and torch.float64 in op.supported_dtypes("cpu")
        and torch.float64 in op.supported_backward_dtypes("cpu")
    ]


def suite_markers(op: Any) -> dict[str, str]:
    """Skips and expected failures PyTorch's own suite declares for this op's gradient tests.

    A torch failure on an op its suite expects to fail is torch's known state, not news; and
    forward mode is left out of torch's check where the suite skips or xfails it (below).
    """
    found: dict[str, str] = {}
    for info in op.decorators:
        if not hasattr(info, "is_active"):
            continue  # precisionOverride and friends
        for cls, test in (BACKWARD_TEST, FORWARD_TEST):
            if info.test_name == test and info.is_active(cls, test, "cpu", torch.float64, {}):
                names = [getattr(d, "__qualname__", repr(d)) for d in info.decorators]
                kind = "xfail" if any("expectedFailure" in n for n in names) else "skip"
                found[test] = kind
    return found


def samples(op: Any) -> list[Any]:
    """The op's float64 samples, seeded as TestCase.setUp and TrackedInputIter seed them."""
    torch.manual_seed(SEED)
    random.seed(SEED)
    np.random.seed(SEED)
    return list(op.sample_inputs("cpu", torch.float64, requires_grad=True))


def _fresh(t: Any) -> Any:
    if isinstance(t, torch.Tensor):
        return t.detach().clone().requires_grad_(t.requires_grad)
    return t


@dataclass(frozen=True)
class Built:
    """A sample as TestGradients checks it: fn(*tensors requiring grad), and those tensors."""

    fn: Callable[..., Any]
    args: tuple[torch.Tensor, ...]


def build(op: Any, sample: Any) -> Built:
    """TestGradients._check_helper's `fn` and `gradcheck_args`, on a fresh clone of `sample`."""
    sample = sample.transform(_fresh)
    if is_iterable_of_tensors(sample.input):
        every = [*sample.input, *sample.args, *sample.kwargs.values()]
    else:
        every = [sample.input, *sample.args, *sample.kwargs.values()]
    args = tuple(x for x in every if isinstance(x, torch.Tensor) and x.requires_grad)
    variant = op.get_op()

    def recompose(inputs: tuple[Any, ...], value: Any, at: int) -> tuple[Any, int]:
        if is_iterable_of_tensors(value):
            out = []
            for x in value:
                if isinstance(x, torch.Tensor) and x.requires_grad:
                    out.append(inputs[at])
                    at += 1
                else:
                    out.append(x)
            return out, at
        if isinstance(value, torch.Tensor) and value.requires_grad:
            return inputs[at], at + 1
        return value, at

    def fn(*inputs: Any) -> Any:
        at = 0
        first, at = recompose(inputs, sample.input, at)
        positional = [first]
        for x in sample.args:
            value, at = recompose(inputs, x, at)
            positional.append(value)
        kwargs = {}
        for k, v in sample.kwargs.items():
            kwargs[k], at = recompose(inputs, v, at)
        output = op.gradcheck_wrapper(variant, *positional, **kwargs)
        if sample.output_process_fn_grad is not None:
            return sample.output_process_fn_grad(output)
        return output

    fn.__qualname__ = full_name(op)
    return Built(fn, args)


def torch_options(op: Any, markers: dict[str, str]) -> dict[str, Any]:
    """torch.autograd.gradcheck's options as TestGradients passes them, in slow mode.

    test_fn_grad checks reverse mode with the op's batched-grad flag and nondet_tol; forward
    mode is added where the op supports it and its own forward-mode test is not skipped or
    expected to fail, so that torch checks what gc.check checks (both modes).
    """
    return {
        "check_batched_grad": bool(op.check_batched_grad),
        "check_grad_dtypes": True,
        "nondet_tol": op.gradcheck_nondet_tol,
        "fast_mode": False,
        "check_forward_ad": bool(op.supports_forward_ad) and FORWARD_TEST[1] not in markers,
        "check_backward_ad": True,
        "check_undefined_grad": True,
        "check_batched_forward_grad": False,
    }


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    """Restore torch's default dtype, grad mode, determinism flag and the RNGs afterwards."""
    dtype = torch.get_default_dtype()
    grad = torch.is_grad_enabled()
    deterministic = torch.are_deterministic_algorithms_enabled()
    states = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_grad_enabled(grad)
        torch.use_deterministic_algorithms(deterministic)
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])


@contextlib.contextmanager
def time_cap(seconds: float) -> Iterator[None]:
    """Raise CheckTimeout in the main thread after `seconds` (a SIGALRM timer).

    The alarm fires when control returns to Python, so a single C++ kernel is not cut short;
    the supervising process in opinfo.py kills a worker that overruns by more than that.
    """

    def expire(signum: int, frame: Any) -> None:
        raise CheckTimeout(f"over {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _first_line(text: str, limit: int = 300) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {_first_line(str(e))}"


def _crash_site(e: BaseException) -> str:
    """Where inside gradcheck an exception was raised: the innermost frame of the package."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "/gradcheck/" in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    return f" [at {f.filename.rsplit('/gradcheck/', 1)[1]}:{f.lineno} {f.name}]"


def run_torch(built: Built, options: dict[str, Any]) -> dict[str, Any]:
    """torch.autograd.gradcheck: pass, fail (its message's first line) or error."""
    try:
        torch.autograd.gradcheck(built.fn, built.args, **options)
    except GradcheckError as e:
        return {"verdict": "fail", "detail": _first_line(str(e))}
    except CheckTimeout:
        raise
    except Exception as e:
        return {"verdict": "error", "detail": _error(e)}
    return {"verdict": "pass", "detail": ""}


def summarize(report: gc.Report) -> dict[str, Any]:
    """The verdict, the worst evidence line of the deciding check (or its message), the first
    note, and the evaluations the report counted."""
    detail = ""
    for c in report.checks:
        if c.verdict == report.verdict:
            detail = f"{c.kind}: " + (c.worst[0].describe() if c.worst else c.message)
            if c.cause:
                detail += f" (likely cause: {c.cause})"
            break
    return {
        "verdict": report.verdict,
        "detail": detail,
        "note": report.notes[0] if report.notes else "",
        "evaluations": report.evaluations,
        "kinds": {c.kind: c.verdict for c in report.checks},
    }


def run_gc(built: Built, mode: str) -> dict[str, Any]:
    """gc.check in one mode: its verdict summary, "refused" (UsageError) or "raised"."""
    try:
        report = gc.check(built.fn, *built.args, mode=mode)
    except gc.UsageError as e:
        return {"verdict": "refused", "detail": _error(e)}
    except CheckTimeout:
        raise
    except Exception as e:
        return {"verdict": "raised", "detail": _error(e) + _crash_site(e)}
    return summarize(report)


def check_sample(
    op: Any,
    sample: Any,
    timeout: float,
    started: Callable[[str], None] = lambda checker: None,
    record: dict[str, Any] | None = None,
    max_n: int = 0,
) -> dict[str, Any]:
    """All three checkers on one sample, filling `record` (returned) as each one finishes.

    `started(checker)` is called before each checker, when `record` holds the ones before it:
    the supervisor can then write what was measured if the worker dies in the next one.
    With `max_n`, a sample of more inputs gets gc fast only (the others say "skipped").
    """
    markers = suite_markers(op)
    options = torch_options(op, markers)
    record = {} if record is None else record
    record.update(suite=markers, torch_forward=options["check_forward_ad"])
    try:
        args = build(op, sample).args
        record["n"] = sum(t.numel() * (1 + t.is_complex()) for t in args)
        record["shapes"] = [list(t.shape) for t in args]
    except Exception:
        pass  # each checker records its own building error below
    for checker in CHECKERS:
        if max_n and checker != "fast" and record.get("n", 0) > max_n:
            # every-entry checks of millions of inputs only measure the time cap
            detail = f"n = {record['n']} > --max-n {max_n}: only gc fast is run"
            record[checker] = {"verdict": "skipped", "detail": detail}
            continue
        started(checker)
        with isolated():
            try:
                built = build(op, sample)
            except Exception as e:
                record[checker] = {"verdict": "error", "detail": "building: " + _error(e)}
                continue
            record.setdefault("n", sum(t.numel() * (1 + t.is_complex()) for t in built.args))
            record.setdefault("shapes", [list(t.shape) for t in built.args])
            start = time.perf_counter()
            try:
                with time_cap(timeout):
                    if checker == "torch":
                        result = run_torch(built, options)
                    else:
                        result = run_gc(built, checker)
            except CheckTimeout as e:
                result = {"verdict": "timeout", "detail": str(e)}
            result["seconds"] = time.perf_counter() - start
        record[checker] = result
    return record
