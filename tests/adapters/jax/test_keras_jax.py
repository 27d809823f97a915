"""Keras 3 on the JAX backend (issue #11.4): a model is checked through the JAX adapter.

Keras picks its backend at import, so the checks run in a subprocess with KERAS_BACKEND=jax
and report back as JSON lines.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.adapters._keras_script import run_keras_script

pytest.importorskip("jax")
pytest.importorskip("keras")

SCRIPT = textwrap.dedent(
    """
    import json
    import jax, jax.numpy as jnp, keras, numpy as np
    import gradcheck as gc
    from keras.src.backend.common import dtypes

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(2)]
    )
    x = np.random.default_rng(0).standard_normal((2, 3)).astype("float32")
    model(x)
    before = [np.array(w.numpy()) for w in model.weights]

    def emit(case, report):
        print(json.dumps({"case": case, "verdict": report.verdict,
                          "framework": report.framework, "notes": list(report.notes),
                          "text": str(report)}))

    for wrt in ("inputs", "params", "all"):
        emit(wrt, gc.check(model, x, wrt=wrt))
    emit("order2", gc.check(model, x, wrt="params", order=2, mode="fast"))

    @jax.custom_vjp
    def bad_sin(t):
        return jnp.sin(t)
    bad_sin.defvjp(lambda t: (jnp.sin(t), t), lambda t, g: (1.5 * g * jnp.cos(t),))
    wrong = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(bad_sin),
                              keras.layers.Dense(1)])
    emit("wrong", gc.check(wrong, x, wrt="inputs"))

    a, b = keras.Input((3,)), keras.Input((2,))
    joined = keras.layers.Concatenate()([keras.layers.Dense(4, activation="tanh")(a), b])
    two = keras.Model([a, b], keras.layers.Dropout(0.3)(keras.layers.Dense(1)(joined),
                                                         training=True))
    y = np.ones((2, 2), "float32")
    emit("two positional", gc.check(two, x, y, mode="fast"))
    emit("two list", gc.check(two, [x, y], wrt="inputs", mode="fast"))

    from gradcheck.adapters import get_adapter
    closure = gc.check(lambda t: model(t), x, framework="keras")
    print(json.dumps({"case": "alias", "adapter": get_adapter([x], "keras").framework,
                      "closure": closure.framework, "verdict": closure.verdict}))

    unchanged = all(np.array_equal(w.numpy(), old) for w, old in zip(model.weights, before))
    print(json.dumps({"case": "state", "unchanged": unchanged,
                      "float64_map": dtypes.BIT64_TO_BIT32_DTYPE.get("float64"),
                      "floatx": keras.config.floatx(),
                      "x64": bool(jax.config.jax_enable_x64)}))
    """
)


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, object]]:
    return run_keras_script(SCRIPT, "jax", timeout=600)


@pytest.mark.parametrize("case", ["inputs", "params", "all", "order2"])
def test_model_passes_through_the_jax_adapter_in_float64(
    results: dict[str, dict[str, object]], case: str
) -> None:
    result = results[case]
    assert result["verdict"] == "pass", result["text"]
    assert result["framework"] == "jax"
    # float64 is really used: no note about float32 round-off in the values
    assert not any("lower precision" in str(n) for n in result["notes"]), result["text"]  # type: ignore[attr-defined]


def test_wrong_custom_rule_in_a_lambda_layer_fails(
    results: dict[str, dict[str, object]],
) -> None:
    assert results["wrong"]["verdict"] == "fail", results["wrong"]["text"]


@pytest.mark.parametrize("case", ["two positional", "two list"])
def test_multi_input_model_with_dropout_is_a_noted_fixed_mask(
    results: dict[str, dict[str, object]], case: str
) -> None:
    result = results[case]
    assert result["verdict"] == "pass", result["text"]
    assert any("same draw" in str(n) for n in result["notes"]), result["text"]  # type: ignore[attr-defined]


def test_user_model_and_keras_settings_are_left_alone(
    results: dict[str, dict[str, object]],
) -> None:
    state = results["state"]
    assert state == {
        "case": "state",
        "unchanged": True,
        "float64_map": "float32",
        "floatx": "float32",
        "x64": False,
    }


def test_framework_keras_means_the_backend_keras_runs_on(
    results: dict[str, dict[str, object]],
) -> None:
    alias = results["alias"]
    assert (alias["adapter"], alias["closure"]) == ("jax", "jax")
    assert alias["verdict"] != "fail"
