"""Discovery: custom rules, modules and layers found in a module, checked or skipped with reason.

One audit over three modules (torch, JAX, TensorFlow/Keras) in one worker, so each framework
is imported once; a module whose framework is missing is left out.
"""

import importlib.util
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradcheck.cli import app
from gradcheck.reporting import read_json

TORCH = """
import torch
from torch import nn
from torch.nn import Linear  # imported, not defined here: not this module's to audit


class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x**2 * g


class Scale(torch.autograd.Function):  # new style: forward without ctx
    @staticmethod
    def forward(x, y):
        return x * y

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return g * y, g * x


class Roll(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, shift: int):
        return torch.roll(x, shift)

    @staticmethod
    def backward(ctx, g):
        return None, None


@torch.library.custom_op("gradcheck_discovery::twice", mutates_args=())
def twice(x: torch.Tensor) -> torch.Tensor:
    return 2 * x


twice.register_autograd(lambda ctx, g: 2 * g)


@torch.library.custom_op("gradcheck_discovery::halve", mutates_args=())
def halve(x: torch.Tensor) -> torch.Tensor:
    return x / 2


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(5, 2, dtype=torch.float64)

    def forward(self, x):
        return torch.tanh(self.layer(x))


class NeedsWidth(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.layer = nn.Linear(width, 1)


conv = nn.Conv2d(2, 1, 3, dtype=torch.float64)
"""
JAX = """
import jax
import jax.numpy as jnp


@jax.custom_vjp
def clipped_sin(x):
    return jnp.sin(x)


clipped_sin.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (jnp.cos(x) * g,))


@jax.custom_jvp
def soft(x):
    return jnp.log1p(jnp.exp(x))


soft.defjvp(lambda p, t: (soft(p[0]), jax.nn.sigmoid(p[0]) * t[0]))


@jax.custom_vjp
def unfinished(x):
    return x
"""
TENSORFLOW = """
import keras
import tensorflow as tf


@tf.custom_gradient
def square(x):
    return x * x, lambda dy: 2 * x * dy


class Gate(keras.layers.Layer):
    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1],), initializer="ones")

    def call(self, x):
        return x * keras.ops.sigmoid(self.w * x)


model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="tanh")])
"""
EXPECTED = {
    "torch_objects.py": (
        "torch",
        {
            "Cube": "pass",
            "Scale": "pass",
            "Roll": "skipped",
            "twice": "pass",
            "halve": "skipped",
            "TinyNet": "pass",
            "NeedsWidth": "skipped",
            "conv": "pass",
        },
    ),
    "jax_objects.py": ("jax", {"clipped_sin": "pass", "soft": "pass", "unfinished": "skipped"}),
    "tf_objects.py": ("keras", {"square": "pass", "Gate": "pass", "model": "pass"}),
}
REASONS = {
    "Roll": "cannot make up argument 'shift' of type int",
    "halve": "no autograd formula (register_autograd)",
    "NeedsWidth": "NeedsWidth() needs constructor arguments",
    "unfinished": "no rule defined (defvjp/defjvp)",
}


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None  # found, not imported: the worker does


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    folder = tmp_path_factory.mktemp("discovery")
    sources = {"torch_objects.py": TORCH, "jax_objects.py": JAX, "tf_objects.py": TENSORFLOW}
    present = [n for n, (framework, _) in EXPECTED.items() if _available(framework)]
    if not present:
        pytest.skip("no framework installed")
    for name in present:
        (folder / name).write_text(textwrap.dedent(sources[name]))
    result = CliRunner().invoke(app, ["audit", str(folder), "--out", str(folder / "r"), "-v"])
    run = read_json((Path(folder) / "r" / "gradcheck.json").read_text())
    return result, present, run


def test_every_recognised_object_is_checked_or_skipped_with_its_reason(audited):
    result, present, run = audited
    assert result.exit_code == 0, result.output
    found = {}
    for outcome in run.outcomes:
        unit, _, name = outcome.name.partition("::")
        found.setdefault(Path(unit).name, {})[name] = outcome
    for module in present:
        statuses = {name: o.status for name, o in found[module].items()}
        assert statuses == EXPECTED[module][1], found[module]
        for name, outcome in found[module].items():
            if name in REASONS:
                assert REASONS[name] in outcome.message
            if outcome.status == "pass":
                assert outcome.line is not None or name in ("conv", "model")


def test_synthesised_inputs_follow_what_the_object_says(audited):
    _, present, run = audited
    if "torch_objects.py" not in present:
        pytest.skip("torch is not installed")
    inputs = {o.name.partition("::")[2]: o.report["inputs"] for o in run.outcomes if o.report}
    assert inputs["TinyNet"][0] == "input[0]: float64[2, 5]"  # in_features of its first layer
    assert inputs["conv"][0] == "input[0]: float64[1, 2, 6, 6]"  # in_channels, two spatial dims
    assert len(inputs["Scale"]) == 2  # forward(x, y): two tensors
