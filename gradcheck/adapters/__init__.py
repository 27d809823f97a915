"""Adapters: user code of any framework seen as one float64 function f: R^n -> R^m.

`get_adapter` finds the adapter for the user's objects, and its `bind` returns a
`Differentiable` (the contract in `gradcheck/_differentiable.py`): the function restricted to
the inputs being checked (`wrt`), flattened into one float64 vector, evaluated on promoted
copies. The checker sees nothing else, which is what keeps it framework-free.

The registry, `ADAPTERS`, is an explicit ordered tuple of (framework, module, adapter class)
written as strings: nothing is imported to list it. An adapter is imported only when its
framework's top-level module is already in `sys.modules` (a torch tensor cannot exist unless
torch was imported) or when `framework="..."` asks for it, so `import gradcheck` never loads a
framework. Adapter instances are cached by class. Detection is not cached by `type(obj)`: a
dict is a JAX pytree or not depending on its leaves, and a Keras layer belongs to whichever
backend Keras runs on.

Naming: each framework has one public module or subpackage here (`numpy`, `torch`, `jax`,
`tensorflow`, `pytensor`), whose `__all__` names its adapter and its flat view (`TorchAdapter`,
`TorchFlat`). Everything inside a subpackage starts with `_` (`torch/_flat.py`, `_module.py`),
as does every helper module (`_common.py`): they are not API, and may change with the code.

Adding a framework
    1. Read `gradcheck/_differentiable.py` (the contract) and one adapter: `numpy.py` is the
       smallest; `torch/` shows autodiff, batching and modules.
    2. Write `adapters/<framework>.py` (or a subpackage when it grows past ~400 lines) with a
       `<Name>Adapter(Adapter)` from `_common`: `framework = "<name>"`, the framework
       imported in `__init__` (never at module level), `handles(obj)`, and `bind(fn, inputs,
       kwargs, wrt)`, which picks the inputs with `select_positions` and checks them with
       `validate_point`.
    3. `bind` returns a `<Name>Flat(Differentiable)`: `value` always; `vjp`/`jvp` and
       `gradient_map` where the framework differentiates (else they raise `Unsupported`);
       batched `values`/`vjps`/`jvps` through `_common.Batching` where it vectorises;
       `native_vjp` for the dtype audit; the conversion hooks (`native_inputs`, …) if it
       accepts hand-written derivatives. Work on float64 copies, never the user's objects.
    4. Add a line to `ADAPTERS`, and tests under `tests/adapters/<framework>/`.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Sequence
from typing import NamedTuple

from .._errors import UsageError
from ._common import Adapter

__all__ = ["ADAPTERS", "Adapter", "Registration", "get_adapter"]


class Registration(NamedTuple):
    """One framework of the registry."""

    framework: str  # the name users pass as framework="..."
    module: str  # its top-level module: none of its objects exist until that is imported
    adapter: str  # "package.module:Class", imported on first use


# Detection order: NumPy last, since a torch module called on NumPy inputs is torch code.
ADAPTERS: tuple[Registration, ...] = (
    Registration("jax", "jax", "gradcheck.adapters.jax:JaxAdapter"),
    Registration("torch", "torch", "gradcheck.adapters.torch:TorchAdapter"),
    Registration("tensorflow", "tensorflow", "gradcheck.adapters.tensorflow:TensorflowAdapter"),
    Registration("pytensor", "pytensor", "gradcheck.adapters.pytensor:PytensorAdapter"),
    Registration("numpy", "numpy", "gradcheck.adapters.numpy:NumpyAdapter"),
)
ALIASES = {"keras": "tensorflow"}  # Keras 3: its backend's adapter (see `_keras_backend`)

_instances: dict[str, Adapter] = {}


def _load(entry: Registration) -> Adapter | None:
    """The adapter of one registry entry (created once), or None if its module is missing."""
    if entry.adapter not in _instances:
        module_name, class_name = entry.adapter.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:  # something the adapter needs: the user's problem
                raise
            return None
        _instances[entry.adapter] = getattr(module, class_name)()
    return _instances[entry.adapter]


def _keras_backend() -> str:
    """The framework Keras 3 runs on (it picks its backend at import; TensorFlow by default)."""
    keras = sys.modules.get("keras")
    backend = keras.backend.backend() if keras is not None else "tensorflow"
    return str(ALIASES.get(backend, backend))


def get_adapter(objects: Sequence[object], framework: str | None = None) -> Adapter:
    """The adapter for these objects (inputs first, then the function or model).

    Args:
        objects: the user's inputs, then fn; the first framework that recognises one of
            them decides, in `ADAPTERS` order.
        framework: force one ("numpy", "torch", "jax", "tensorflow", "keras", "pytensor"),
            e.g. NumPy inputs for a function of another framework.

    Raises:
        UsageError: an unknown or unavailable framework name, or objects no adapter
            recognises.
    """
    if framework is not None:
        name = _keras_backend() if framework == "keras" else ALIASES.get(framework, framework)
        names = {entry.framework: entry for entry in ADAPTERS}
        if name not in names:
            raise UsageError(f"unknown framework {framework!r}; choose from {sorted(names)}")
        adapter = _load(names[name])
        if adapter is None:
            raise UsageError(f"the {name} adapter is not available in this gradcheck version")
        return adapter
    for entry in ADAPTERS:
        if entry.module not in sys.modules:
            continue
        adapter = _load(entry)
        if adapter is not None and any(adapter.handles(obj) for obj in objects):
            # A tuple is a JAX pytree, so this adapter takes it; but a function that needs
            # two or more arguments cannot have meant one.
            _refuse_packed_inputs(objects, least=2)
            return adapter
    _refuse_packed_inputs(objects)
    kinds = ", ".join(sorted({type(obj).__name__ for obj in objects})) or "nothing"
    raise UsageError(
        f"cannot tell which framework these inputs belong to ({kinds}); supported: "
        "NumPy arrays, torch tensors/modules, JAX arrays (and pytrees of them), "
        "TensorFlow tensors/variables, Keras layers and compiled PyTensor functions. Pass "
        "framework=... to choose one (framework='pytensor' for graph-building functions)."
    )


def _refuse_packed_inputs(objects: Sequence[object], least: int = 1) -> None:
    """`gc.check(f, (x, y))` as torch.autograd.gradcheck and check_grads take their inputs:
    when f's arity shows the tuple's elements were meant, say so instead of "cannot tell"
    (or instead of f's own "missing 1 required positional argument"). `least`: the fewest
    required arguments that show it (2 where one tuple would be a valid argument).

    Raises:
        UsageError: with "did you mean gc.check(f, *inputs)?".
    """
    if len(objects) != 2 or not isinstance(objects[0], (tuple, list)) or not objects[0]:
        return
    packed: Sequence[object] = objects[0]
    fn = objects[1]
    if not any(a.handles(item) for a in _instances.values() for item in packed):
        return
    try:
        parameters = inspect.signature(fn).parameters.values()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(p.default is p.empty for p in positional)
    spread = any(p.kind is p.VAR_POSITIONAL for p in parameters)
    if not least <= required <= len(packed) or (len(packed) > len(positional) and not spread):
        return
    kinds = ", ".join(type(item).__name__ for item in packed)
    raise UsageError(
        f"the inputs are one {type(packed).__name__} ({kinds}) but the function takes "
        f"{len(packed)} positional arguments: did you mean gc.check(f, *inputs)? gradcheck "
        "takes the inputs as separate arguments, not as torch.autograd.gradcheck's or "
        "check_grads' tuple"
    )
