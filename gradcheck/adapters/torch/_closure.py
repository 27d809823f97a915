"""What a function brings besides its arguments: captured tensors and modules, a compiler.

Two calling habits need it. A closure over a float32 model (`lambda x: loss(model(x), y)`)
cannot run on float64 copies, and the error it raises depends on the op (matmul says "dtype",
conv says "Input type (double) and bias type (float)"), so the clash is recognised by what the
closure captures, not by the message. And `torch.compile(f)` recompiles for every new batch
shape the checker evaluates, so the uncompiled function is checked where it is reachable.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterator
from typing import Any

# How deep to look through nested closures, partials and bound objects: user code, not a
# whole program, is what a check is handed.
_DEPTH = 3


def captures_low_precision(fn: Any) -> bool:
    """Whether fn reaches a float tensor or module below float64 other than through its
    arguments: closure cells, globals it names, a partial's arguments, a bound method's
    object (and one level of that object's attributes)."""
    return any(_low_precision(obj) for obj in _captured(fn, _DEPTH))


def _captured(fn: Any, depth: int) -> Iterator[Any]:
    if depth <= 0:
        return
    if isinstance(fn, functools.partial):
        yield from (*fn.args, *fn.keywords.values())
        yield from _captured(fn.func, depth - 1)
        return
    if isinstance(fn, types.MethodType):
        owner = fn.__self__
        yield owner
        yield from vars(owner).values() if hasattr(owner, "__dict__") else ()
        yield from _captured(fn.__func__, depth - 1)
        return
    code = getattr(fn, "__code__", None)
    if code is None:
        return
    cells = [cell.cell_contents for cell in fn.__closure__ or () if _filled(cell)]
    module_globals = getattr(fn, "__globals__", {})
    named = [module_globals[name] for name in _names(code) if name in module_globals]
    for obj in (*cells, *named):
        yield obj
        if isinstance(obj, types.FunctionType | functools.partial | types.MethodType):
            yield from _captured(obj, depth - 1)


def _names(code: types.CodeType) -> Iterator[str]:
    """Global names a code object and the functions defined inside it use."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises ValueError
    except ValueError:
        return False
    return True


def _low_precision(obj: Any) -> bool:
    import torch

    if isinstance(obj, torch.nn.Module):
        return any(
            t.is_floating_point() and t.dtype != torch.float64
            for t in (*obj.parameters(), *obj.buffers())
        )
    if isinstance(obj, torch.Tensor):
        return obj.is_floating_point() and obj.dtype != torch.float64
    if isinstance(obj, (list, tuple)):
        return any(_low_precision(item) for item in obj[:64])
    if isinstance(obj, dict):
        return any(_low_precision(item) for item in list(obj.values())[:64])
    return False


def uncompiled(fn: Callable[..., Any]) -> tuple[Callable[..., Any], list[str]]:
    """fn without its torch.compile wrapper, where that is reachable, and the note saying so.

    A compiled function recompiles for every batch shape and dtype the checker evaluates
    (21 s against 4 s for torch.autograd.gradcheck on 6 inputs, issue #12); the derivatives
    checked are those of the code the user wrote, which is what torch.compile must preserve.
    """
    import torch

    original: Any
    if isinstance(fn, torch.nn.Module) and hasattr(fn, "_orig_mod"):
        original = fn._orig_mod
        kind = "module"
    elif callable(getattr(fn, "_torchdynamo_orig_callable", None)):
        original = getattr(fn, "_torchdynamo_orig_callable")  # noqa: B009 - not in the type
        kind = "function"
    else:
        return fn, []
    return original, [
        f"a torch.compile'd {kind}: checked through the uncompiled {kind} (compiling again for "
        "every batch shape the check evaluates costs seconds each); the compiled code's own "
        "numerics are not what is checked"
    ]
