"""A sweep of common Keras 3 layers: no false alarm, no crash (issue #10's acceptance).

Each layer is built on a small random input and checked by `gc.check(layer, x, wrt=...)` with
respect to its inputs, its weights and both, with float32 and float64 inputs, in full mode. A
correct layer must pass; anything else is listed with its first line. The split CNN of the seed
question (a Keras CNN cut into two models, the loss of model_1(model_0(x))) is checked as a
closure over float32 models through `models=` (on the backends that have it: TensorFlow,
torch).

Usage: `python benchmarks/keras_layers.py [--tiny] [--backend tensorflow|jax|torch]
[--out reports/benchmarks/keras.md]` (the default output of another backend is
`keras_<backend>.md`). Keras picks its backend at import, so `--backend` sets KERAS_BACKEND
before anything imports it.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPORTS, write_atomically

WRT = ("inputs", "params", "all")
DTYPES = ("float32", "float64")
BACKENDS = ("tensorflow", "jax", "torch")


def _array(values: np.ndarray, dtype: str) -> Any:
    """An input of the backend Keras runs on (NumPy on JAX, whose float64 needs x64: the JAX
    adapter converts it inside its scoped x64)."""
    import keras

    if keras.backend.backend() == "jax":
        return values.astype(dtype)
    return keras.ops.convert_to_tensor(values.astype(dtype), dtype)


def layers() -> list[tuple[str, Callable[[], Any], tuple[int, ...]]]:
    """(name, a function that builds the layer, input shape with a batch of 2)."""
    import keras

    dense = [
        (f"Dense({act})", lambda act=act: keras.layers.Dense(3, activation=act), (2, 4))
        for act in ("linear", "tanh", "sigmoid", "relu", "gelu", "softplus", "elu", "swish")
    ]
    return [
        *dense,
        ("Conv1D", lambda: keras.layers.Conv1D(2, 3, activation="tanh"), (2, 6, 2)),
        ("Conv2D", lambda: keras.layers.Conv2D(2, 3, activation="relu"), (2, 5, 5, 1)),
        ("DepthwiseConv2D", lambda: keras.layers.DepthwiseConv2D(2), (2, 4, 4, 2)),
        ("Conv2DTranspose", lambda: keras.layers.Conv2DTranspose(2, 2), (2, 3, 3, 1)),
        ("MaxPooling2D", lambda: keras.layers.MaxPooling2D(), (2, 4, 4, 1)),
        ("AveragePooling1D", lambda: keras.layers.AveragePooling1D(2), (2, 6, 2)),
        ("GlobalAveragePooling2D", lambda: keras.layers.GlobalAveragePooling2D(), (2, 3, 3, 2)),
        ("LayerNormalization", lambda: keras.layers.LayerNormalization(), (2, 5)),
        ("BatchNormalization", lambda: keras.layers.BatchNormalization(), (2, 4)),
        ("SimpleRNN", lambda: keras.layers.SimpleRNN(3), (2, 4, 2)),
        ("GRU", lambda: keras.layers.GRU(2), (2, 3, 2)),
        ("LSTM", lambda: keras.layers.LSTM(2), (2, 3, 2)),
        (
            "MultiHeadAttention",
            lambda: _SelfAttention(keras),
            (2, 3, 4),
        ),
        (
            "UpSampling2D(bilinear)",
            lambda: keras.layers.UpSampling2D(interpolation="bilinear"),
            (2, 2, 2, 1),
        ),
        ("Softmax", lambda: keras.layers.Softmax(), (2, 5)),
    ]


def _SelfAttention(keras: Any) -> Any:  # noqa: N802 - builds a layer, named like one
    """MultiHeadAttention over one input (query = value), as a functional model."""
    inputs = keras.Input((3, 4))
    outputs = keras.layers.MultiHeadAttention(num_heads=2, key_dim=2)(inputs, inputs)
    return keras.Model(inputs, outputs)


def sweep(tiny: bool) -> list[dict[str, Any]]:
    import keras

    import gradcheck as gc

    rows = []
    chosen = layers()[:2] if tiny else layers()
    for name, build, shape in chosen:
        for dtype in DTYPES[-1:] if tiny else DTYPES:
            keras.utils.set_random_seed(0)
            layer = build()
            x = _array(np.random.default_rng(0).standard_normal(shape), dtype)
            layer(x)  # built as users build it
            for wrt in WRT[:1] if tiny else WRT:
                if wrt == "params" and not layer.trainable_weights:
                    continue  # nothing to ask for: "all" covers its inputs
                start = time.perf_counter()
                try:
                    report = gc.check(layer, x, wrt=wrt)
                    verdict = report.verdict
                    detail = next((c.message for c in report.checks if c.verdict != "pass"), "")
                except Exception as error:  # the sweep records crashes as findings
                    verdict, detail = "crash", f"{type(error).__name__}: {error}"
                rows.append(
                    {
                        "layer": name,
                        "dtype": dtype,
                        "wrt": wrt,
                        "verdict": verdict,
                        "detail": detail.splitlines()[0][:200] if detail else "",
                        "seconds": time.perf_counter() - start,
                    }
                )
                print(f"{name:28s} {dtype} {wrt:6s} {verdict:16s} {rows[-1]['seconds']:.1f}s")
    if keras.backend.backend() != "jax":  # models= is not available there
        rows.append(_split_cnn())
    return rows


def _split_cnn() -> dict[str, Any]:
    """The seed question: a float32 CNN cut into two models, its loss as a closure."""
    import keras

    import gradcheck as gc

    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 1))
    hidden = keras.layers.MaxPooling2D()(keras.layers.Conv2D(2, 3, activation="relu")(inputs))
    model_0 = keras.Model(inputs, hidden)
    middle = keras.Input(hidden.shape[1:])
    model_1 = keras.Model(middle, keras.layers.Dense(2)(keras.layers.Flatten()(middle)))
    x = _array(np.random.default_rng(0).standard_normal((1, 6, 6, 1)), "float32")
    start = time.perf_counter()
    report = gc.check(
        lambda t: keras.ops.sum(model_1(model_0(t)) ** 2), x, models=[model_0, model_1]
    )
    return {
        "layer": "split CNN closure (models=)",
        "dtype": "float32",
        "wrt": "inputs",
        "verdict": report.verdict,
        "detail": next((c.message for c in report.checks if c.verdict != "pass"), ""),
        "seconds": time.perf_counter() - start,
    }


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def render(rows: list[dict[str, Any]], seconds: float) -> str:
    import keras

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    bad = [r for r in rows if r["verdict"] != "pass"]
    lines = [
        "# Keras 3 layers: no false alarm, no crash",
        "",
        f"Generated by `benchmarks/keras_layers.py` on {_now()}: "
        f"{platform.machine()}, Keras {keras.__version__} ({keras.backend.backend()} backend), "
        "gradcheck "
        f"`{commit}`, {seconds:.0f} s. Each layer is built on a random input of the shape shown "
        "and checked in full mode w.r.t. its inputs, its weights and both (weights only where it "
        "has some), with float32 and float64 inputs (the check runs on a float64 clone).",
        "",
        f"**{len(rows) - len(bad)} of {len(rows)} checks pass; {len(bad)} do not.**",
        "",
        "| layer | dtype | wrt | verdict | time | first finding |",
        "|---|---|---|---|---:|---|",
    ]
    lines += [
        f"| {r['layer']} | {r['dtype']} | {r['wrt']} | {r['verdict']} | {r['seconds']:.1f} s | "
        f"{r['detail'].replace('|', '/')} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="two layers, one dtype: smoke test")
    parser.add_argument("--backend", choices=BACKENDS, default="tensorflow")
    parser.add_argument("--out", type=Path, help="default: keras.md, keras_<backend>.md")
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = args.backend
    if args.out is None:
        suffix = "" if args.backend == "tensorflow" else f"_{args.backend}"
        args.out = REPORTS / f"keras{suffix}.md"
    start = time.perf_counter()
    rows = sweep(args.tiny)
    write_atomically(args.out, render(rows, time.perf_counter() - start))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
