"""TensorFlow inputs with entries that are not finite (issue #11.4): a -inf attention mask or
NaN padding passed as a checked input. Those entries are held constant and named in a note;
the check, and its verdict, are about the finite ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import gradcheck as gc  # noqa: E402
from gradcheck.adapters.tensorflow import TensorflowAdapter  # noqa: E402

from .test_tensorflow import scaled_sin  # noqa: E402

DTYPES = ["float32", "float64"]
MASK = np.array([[0.0, -np.inf, 0.0, 0.0], [-np.inf, 0.0, 0.0, -np.inf]])


def bind(fn: Any, *inputs: Any, wrt: Any = None) -> Any:
    return TensorflowAdapter().bind(fn, inputs, {}, wrt)


def randn(*shape: int, dtype: str = "float64", seed: int = 0) -> Any:
    return tf.constant(np.random.default_rng(seed).standard_normal(shape), dtype=dtype)


def masked_softmax(x: Any, mask: Any) -> Any:
    return tf.nn.softmax(x + mask, axis=-1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_minus_inf_mask_is_held_constant_named_and_the_rest_checked(dtype: str) -> None:
    report = gc.check(masked_softmax, randn(2, 4, dtype=dtype), tf.constant(MASK, dtype=dtype))
    assert report.verdict == "pass", report
    assert {"vjp", "jvp"} <= {c.kind for c in report.checks}, report
    assert (
        "input[1] has 3 entries that are not finite (-inf at (0, 1), -inf at (1, 0), "
        "-inf at (1, 3)): held constant, and the check runs on its 5 finite entries"
    ) in str(report)


def test_held_entries_are_not_in_the_flat_vector_and_batches_agree_with_a_loop() -> None:
    f = bind(masked_softmax, randn(2, 4), tf.constant(MASK))
    assert (f.n, f.inputs[1].size) == (13, 5)
    assert f.inputs[1].locate(8 + 1) == "input[1][0, 2]"
    rows = f.x0 + 0.01 * np.random.default_rng(1).standard_normal((40, f.n))
    looped = np.stack([f.value(row) for row in rows])
    np.testing.assert_allclose(f.values(rows), looped, rtol=1e-12)
    u = np.random.default_rng(2).standard_normal(f.m)
    np.testing.assert_allclose(f.vjps(f.x0, np.stack([u] * 40))[0], f.vjp(f.x0, u), rtol=1e-12)
    (_, mask_tangent) = f.native_tangents(np.ones(f.n))
    np.testing.assert_array_equal(mask_tangent.numpy(), np.isfinite(MASK).astype(float))


def test_a_wrong_gradient_on_a_finite_entry_still_fails_there() -> None:
    x = tf.constant([np.inf, 0.3, -0.7, np.nan], dtype=tf.float64)
    fn = lambda x: tf.where(tf.math.is_finite(x), scaled_sin(1.1)(x), 0.0)  # noqa: E731
    report = gc.check(fn, x)
    assert report.verdict == "fail", report
    worst = str(report).split("note:")[0]
    assert "input[0][1]" in worst
    assert "input[0][0]" not in worst
    assert "input[0][3]" not in worst
    right = lambda x: tf.where(tf.math.is_finite(x), scaled_sin(1.0)(x), 0.0)  # noqa: E731
    assert gc.check(right, x).verdict == "pass"


def test_nan_entries_and_a_hand_written_gradient_read_on_the_finite_ones() -> None:
    x = tf.constant([0.5, np.nan, -1.0], dtype=tf.float64)

    def fn(x: Any) -> Any:
        return tf.reduce_sum(tf.where(tf.math.is_nan(x), 0.0, tf.sin(x)))

    report = gc.check(fn, x, grad=lambda x: tf.cos(x))
    assert report.verdict == "pass", report
    assert "input[0] has 1 entry that is not finite (nan at (1,))" in str(report)
    assert gc.check(fn, x, grad=lambda x: 1.01 * tf.cos(x)).verdict == "fail"


def test_an_input_with_no_finite_entry_is_held_whole_and_noted() -> None:
    mask = tf.constant(np.full((2, 4), -np.inf))
    fn = lambda x, m: tf.reduce_sum(tf.sin(x)) + tf.reduce_sum(tf.exp(m))  # noqa: E731
    report = gc.check(fn, randn(2, 4), mask)
    assert report.verdict == "pass", report
    assert "input[1] has no finite entry" in str(report)
