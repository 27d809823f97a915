"""Keras 3 on the torch backend (issue #11.4): a model is checked through the torch adapter.

Keras picks its backend at import, so the checks run in a subprocess with KERAS_BACKEND=torch
and report back as JSON lines.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.adapters._keras_script import run_keras_script

pytest.importorskip("torch")
pytest.importorskip("keras")

SCRIPT = textwrap.dedent(
    """
    import json
    import keras, numpy as np, torch
    import gradcheck as gc
    from gradcheck.adapters import get_adapter
    from gradcheck.adapters.torch import TorchAdapter
    from keras.src.backend.common import dtypes

    def emit(case, report, **more):
        print(json.dumps({"case": case, "verdict": report.verdict,
                          "framework": report.framework, "notes": list(report.notes),
                          "text": str(report), **more}))

    def names(model, args, wrt):
        return [leaf.name for leaf in TorchAdapter().bind(model, args, {}, wrt).inputs]

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((5, 5, 1)), keras.layers.Conv2D(2, 3, activation="tanh"),
        keras.layers.Flatten(), keras.layers.Dense(2),
    ])
    x = np.random.default_rng(0).standard_normal((1, 5, 5, 1)).astype("float32")
    model(x)
    def snapshot(m):
        return [np.array(w.numpy()) for w in m.weights], m.dtype_policy.name, m.training
    before, rng = snapshot(model), torch.get_rng_state()

    for wrt in ("inputs", "params", "all"):
        emit(wrt, gc.check(model, torch.tensor(x), wrt=wrt))
    emit("numpy", gc.check(model, x, wrt="inputs", mode="fast"))
    dense = keras.layers.Dense(2, activation="tanh")
    emit("order2", gc.check(dense, torch.ones(1, 3), wrt="params", order=2, mode="fast"))

    @keras.ops.custom_gradient
    def bad_sin(t):
        def grad(*args, upstream=None):
            upstream = args[0] if upstream is None else upstream
            return 1.5 * upstream * keras.ops.cos(t)
        return keras.ops.sin(t), grad
    wrong = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(bad_sin),
                              keras.layers.Dense(1)])
    v = np.random.default_rng(1).standard_normal((2, 3)).astype("float32")
    emit("wrong", gc.check(wrong, v, wrt="inputs"))

    a, b = keras.Input((3,)), keras.Input((2,))
    joined = keras.layers.Concatenate()([keras.layers.Dense(4, activation="tanh")(a), b])
    two = keras.Model([a, b], keras.layers.Dense(1)(joined))
    y = np.ones((2, 2), "float32")
    for wrt in ("inputs", "params", "all"):
        emit(f"positional {wrt}", gc.check(two, v, y, wrt=wrt), names=names(two, (v, y), wrt))
        emit(f"list {wrt}", gc.check(two, [v, y], wrt=wrt), names=names(two, ([v, y],), wrt))
    dropped = keras.Model([a, b], keras.layers.Dropout(0.3)(two([a, b]), training=True))
    emit("dropout", gc.check(dropped, v, y, mode="fast"))

    class Unconfigurable(keras.layers.Layer):  # no get_config for its argument: no clone
        def __init__(self, scale):
            super().__init__()
            self.scale = scale
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1],), initializer="ones")
        def call(self, t):
            return keras.ops.sin(t * self.w) * self.scale
    own = Unconfigurable(2.0)
    own(v)
    emit("own dtype", gc.check(own, v))

    emit("closure", gc.check(lambda t: model(t) ** 2, torch.tensor(x, dtype=torch.float64)))
    emit("closure numpy", gc.check(lambda t: model(t), x.astype("float64"), mode="fast"))
    print(json.dumps({"case": "alias", "adapter": get_adapter([x], "keras").framework}))

    middle = keras.Input((3, 3, 2))
    head = keras.Model(middle, keras.layers.Dense(2)(keras.layers.Flatten()(middle)))
    body = keras.Model(model.inputs, model.layers[0].output)
    split = lambda t: (head(body(t)) ** 2).sum()
    emit("models", gc.check(split, torch.tensor(x), models=[body, head]),
         classes=[type(body).__name__, type(head).__name__])

    after = snapshot(model)
    print(json.dumps({
        "case": "state",
        "weights": all(np.array_equal(p, q) for p, q in zip(before[0], after[0])),
        "policy": after[1], "training": after[2] == before[2],
        "rng": bool(torch.equal(rng, torch.get_rng_state())),
        "float64_map": dtypes.BIT64_TO_BIT32_DTYPE.get("float64"),
        "floatx": keras.config.floatx(), "default": str(torch.get_default_dtype()),
    }))
    """
)


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, object]]:
    return run_keras_script(SCRIPT, "torch", timeout=900)


def _notes(result: dict[str, object]) -> list[str]:
    return [str(note) for note in result["notes"]]  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", ["inputs", "params", "all", "numpy", "order2"])
def test_conv_model_passes_through_the_torch_adapter_in_float64(
    results: dict[str, dict[str, object]], case: str
) -> None:
    result = results[case]
    assert result["verdict"] == "pass", result["text"]
    assert result["framework"] == "torch"
    # float64 is really used: no note about float32 round-off in the values
    assert not any("lower precision" in note for note in _notes(result)), result["text"]


def test_wrong_custom_gradient_in_a_lambda_layer_fails(
    results: dict[str, dict[str, object]],
) -> None:
    assert results["wrong"]["verdict"] == "fail", results["wrong"]["text"]


@pytest.mark.parametrize("wrt", ["inputs", "params", "all"])
def test_multi_input_model_in_both_calling_forms(
    results: dict[str, dict[str, object]], wrt: str
) -> None:
    for form, expected in (
        ("positional", ["input[0]", "input[1]"]),
        ("list", ["input[0][0]", "input[0][1]"]),
    ):
        result = results[f"{form} {wrt}"]
        assert result["verdict"] == "pass", result["text"]
        names = [str(name) for name in result["names"]]  # type: ignore[attr-defined]
        assert (names[:2] == expected) == (wrt != "params"), names
        assert any(name.startswith("params[") for name in names) == (wrt != "inputs"), names


def test_unseeded_dropout_is_a_noted_fixed_draw(results: dict[str, dict[str, object]]) -> None:
    result = results["dropout"]
    assert result["verdict"] == "pass", result["text"]
    assert any("same draw" in n and "torch's global generator" in n for n in _notes(result))


def test_a_layer_that_cannot_be_cloned_is_checked_in_its_own_dtype(
    results: dict[str, dict[str, object]],
) -> None:
    result = results["own dtype"]
    assert result["verdict"] == "pass", result["text"]
    assert any("could not be copied to float64" in note for note in _notes(result))


@pytest.mark.parametrize("case", ["closure", "closure numpy"])
def test_closure_over_a_model_is_torch_code(
    results: dict[str, dict[str, object]], case: str
) -> None:
    result = results[case]
    assert result["verdict"] == "pass", result["text"]
    assert result["framework"] == "torch"


def test_closure_over_float32_models_runs_their_float64_clones_with_models(
    results: dict[str, dict[str, object]],
) -> None:
    result = results["models"]
    assert result["verdict"] == "pass", result["text"]
    assert any("float64_models" in note for note in _notes(result)), result["text"]
    assert not any("lower precision" in note for note in _notes(result)), result["text"]
    assert result["classes"] == ["Functional", "Functional"]


def test_framework_keras_means_torch(results: dict[str, dict[str, object]]) -> None:
    assert results["alias"]["adapter"] == "torch"


def test_user_model_and_settings_are_left_alone(results: dict[str, dict[str, object]]) -> None:
    assert results["state"] == {
        "case": "state",
        "weights": True,
        "policy": "float32",
        "training": True,
        "rng": True,
        "float64_map": "float32",
        "floatx": "float32",
        "default": "torch.float32",
    }
