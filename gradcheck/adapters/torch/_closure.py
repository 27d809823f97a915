"""What a function brings besides its arguments: captured tensors and modules, a compiler.

Two calling habits need it. A closure over a float32 model (`lambda x: loss(model(x), y)`)
cannot run on float64 copies, and the error it raises depends on the op (matmul says "dtype",
conv says "Input type (double) and bias type (float)"), so the clash is recognised by what the
closure captures, not by the message. And `torch.compile(f)` recompiles for every new batch
shape the checker evaluates, so the uncompiled function is checked where it is reachable.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import types
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# How deep to look through nested closures, partials and bound objects: user code, not a
# whole program, is what a check is handed.
_DEPTH = 3


def captures_low_precision(fn: Any) -> bool:
    """Whether fn reaches a float tensor or module below float64 other than through its
    arguments: closure cells, globals it names, a partial's arguments, a bound method's
    object (and one level of that object's attributes)."""
    return any(_low_precision(obj) for obj in _captured(fn, _DEPTH))


def captured_modules(fn: Any) -> list[torch.nn.Module]:
    """The modules below float64 that fn reaches other than through its arguments (closure
    cells, globals it names, a partial's or bound method's objects), each once."""
    import torch

    found: dict[int, torch.nn.Module] = {}
    for obj in _captured(fn, _DEPTH):
        if isinstance(obj, torch.nn.Module) and _low_precision(obj):
            found.setdefault(id(obj), obj)
    return list(found.values())


class Float64Clones:
    """float64 copies of the modules a closure captures, and a way to run the closure on them.

    A closure over a float32 model (`lambda x: loss(model(x), y)`) would otherwise be checked
    in float32, where the noise of its values pushes the steps past relu and max-pool kinks
    a few hundredths away (issue #10: 9 of 20 small float32 relu MLPs failed a correct
    gradient). While `active()` runs, each module's forward (and each of its submodules')
    is the clone's, so `model(x)` and `model[0](x)` both compute in float64; the user's
    modules are put back as they were when the block ends, even on an exception, and their
    parameters, buffers (batch-norm statistics) and modes are never touched.

    Raises:
        TypeError, RuntimeError: a module that cannot be deep-copied or converted.
    """

    def __init__(self, modules: Sequence[torch.nn.Module]) -> None:
        import torch

        self.names = [type(m).__name__ for m in modules]
        self._pairs: list[tuple[torch.nn.Module, torch.nn.Module]] = []
        for module in modules:
            clone = copy.deepcopy(module).to(torch.float64)
            self._pairs += zip(module.modules(), clone.modules(), strict=True)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        swapped: list[tuple[torch.nn.Module, Any]] = []
        try:
            for own, clone in self._pairs:
                swapped.append((own, own.__dict__.get("forward", _UNSET)))
                object.__setattr__(own, "forward", clone.forward)  # not Module.__setattr__
            yield
        finally:
            for own, previous in reversed(swapped):
                if previous is _UNSET:
                    del own.__dict__["forward"]
                else:
                    object.__setattr__(own, "forward", previous)


_UNSET = object()


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
