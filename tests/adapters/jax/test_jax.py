"""The JAX adapter: pytrees, float64 without global state, custom rules, and verdicts.

The first half tests the `Differentiable` the adapter binds against known answers; the second
half runs `gc.check` end to end on real layers, custom rules and surrogates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy

import gradcheck as gc  # noqa: E402 - after the importorskip on purpose
from gradcheck import adapters  # noqa: E402
from gradcheck._differentiable import Unsupported  # noqa: E402
from gradcheck._errors import UsageError  # noqa: E402
from gradcheck.adapters import _common, get_adapter  # noqa: E402
from gradcheck.adapters.jax import JaxAdapter  # noqa: E402

_rng = [np.random.default_rng(0)]  # reseeded before every test: inputs do not depend on order


def _bind(fn: Callable[..., Any], *inputs: Any, wrt: Any = None, **kwargs: Any) -> Any:
    return JaxAdapter().bind(fn, inputs, kwargs, wrt)


def _arr(shape: tuple[int, ...], dtype: str = "float32", scale: float = 1.0) -> Any:
    """A random JAX array; float64 ones are made under a scoped x64 (the user's way)."""
    values = _rng[0].standard_normal(shape) * scale
    with jax.enable_x64(dtype == "float64"):
        return jnp.asarray(values, dtype=dtype)


@pytest.fixture(autouse=True)
def _x64_untouched() -> Iterator[None]:
    """No test (and no check) may leave the global x64 flag switched; inputs are reseeded."""
    _rng[0] = np.random.default_rng(0)
    before = jax.config.jax_enable_x64
    yield
    assert jax.config.jax_enable_x64 == before
    assert jnp.ones(3).dtype == jnp.float32


# ---------------------------------------------------------------- the Differentiable itself


def test_value_vjp_jvp_match_known_answers() -> None:
    x = jnp.array([0.3, -1.2, 2.0])
    d = _bind(lambda x: jnp.sin(x) * x, x)
    x0 = np.array([0.3, -1.2, 2.0], dtype=np.float32).astype(np.float64)
    jac = np.diag(np.cos(x0) * x0 + np.sin(x0))
    u, v = np.array([1.0, -2.0, 0.5]), np.array([0.1, 0.2, -0.3])
    np.testing.assert_allclose(d.value(d.x0), np.sin(x0) * x0, rtol=1e-15)
    np.testing.assert_allclose(d.vjp(d.x0, u), jac.T @ u, rtol=1e-14)
    np.testing.assert_allclose(d.jvp(d.x0, v), jac @ v, rtol=1e-14)
    np.testing.assert_allclose(
        d.vjps(d.x0, np.stack([u, 2 * u])), np.stack([jac.T @ u, 2 * jac.T @ u])
    )
    np.testing.assert_allclose(d.jvps(d.x0, np.stack([v, -v])), np.stack([jac @ v, -(jac @ v)]))
    xs = d.x0 + np.arange(15.0).reshape(5, 3) / 10
    np.testing.assert_allclose(d.values(xs), np.sin(xs) * xs, rtol=1e-15)
    assert d.eps == np.finfo(np.float64).eps
    assert [leaf.dtype for leaf in d.inputs] == ["float32"]


def test_float32_inputs_are_evaluated_in_float64() -> None:
    x = jnp.array([3.0], dtype=jnp.float32)
    d = _bind(lambda x: (x * (1 + 1e-10) - x) * 1e10, x)  # float32 gives 0, float64 gives 3
    np.testing.assert_allclose(d.value(d.x0), [3.0], rtol=1e-5)
    assert d.value(d.x0).dtype == np.float64


def test_pytree_inputs_are_named_by_key_path_and_int_leaves_left_alone() -> None:
    params = {"w": _arr((3, 2)), "b": _arr((2,)), "step": jnp.array(3)}
    x = _arr((4, 3))

    def loss(p: dict[str, Any], x: Any) -> Any:
        return jnp.sum(jnp.tanh(x @ p["w"] + p["b"]) ** 2) * p["step"]

    d = _bind(loss, params, x, wrt=0)
    assert [leaf.name for leaf in d.inputs] == ["input[0]['b']", "input[0]['w']"]
    assert d.n == 8
    assert any("input[0]['step']" in n and "int32" in n for n in d.notes)
    assert any("input[1]" in n and "not differentiated" in n for n in d.notes)
    grads = jax.grad(loss, allow_int=True)(params, x)
    expected = np.concatenate([np.ravel(grads["b"]), np.ravel(grads["w"])])
    np.testing.assert_allclose(d.vjp(d.x0, np.ones(1)), expected, rtol=1e-5)


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class _Linear:
    """An equinox/flax-style parameter container with a static field."""

    w: Any
    b: Any
    activation: str = dataclasses.field(default="tanh", metadata={"static": True})


def test_dataclass_pytree_inputs_and_pytree_outputs() -> None:
    layer = _Linear(_arr((3, 2), "float64"), _arr((2,), "float64"))

    def forward(layer: _Linear, x: Any) -> dict[str, Any]:
        assert layer.activation == "tanh"
        h = jnp.tanh(x @ layer.w + layer.b)
        return {"loss": jnp.sum(h**2), "aux": (h, jnp.mean(h))}

    d = _bind(forward, layer, _arr((4, 3), "float64"), wrt=0)
    assert [leaf.name for leaf in d.inputs] == ["input[0].w", "input[0].b"]
    assert [leaf.name for leaf in d.outputs] == [
        "output['aux'][0]",
        "output['aux'][1]",
        "output['loss']",
    ]
    assert d.m == 4 * 2 + 1 + 1
    assert d.native_vjp(np.ones(d.m)) is None  # float64 already: nothing to audit
    cotangent = d.native_outputs(np.arange(d.m, dtype=float))
    assert set(cotangent) == {"loss", "aux"}
    assert cotangent["aux"][0].shape == (4, 2)
    (tangent,) = d.native_tangents(np.ones(d.n))
    assert isinstance(tangent, _Linear)
    assert tangent.w.dtype == jnp.float64
    args = d.native_inputs(d.x0)
    assert args[0].w.dtype == jnp.float64
    assert args[0].activation == "tanh"


def test_x64_flag_and_user_jit_cache_are_untouched_even_on_errors() -> None:
    user_fn = jax.jit(lambda x: x * 2)
    assert user_fn(jnp.ones(3)).dtype == jnp.float32
    d = _bind(lambda x: jnp.sum(user_fn(x) ** 2), jnp.ones(3))
    d.values(np.ones((3, 3)))
    d.gradient_map(np.ones(1)).jvp(d.x0, np.ones(3))
    assert not jax.config.jax_enable_x64
    assert jnp.ones(3).dtype == jnp.float32
    assert user_fn(jnp.ones(3)).dtype == jnp.float32

    class BoomError(Exception):
        pass

    def raises(x: Any) -> Any:
        if jnp.result_type(x) == jnp.float64:
            raise BoomError("user error")
        return x

    with pytest.raises(BoomError, match="user error"):
        _bind(raises, jnp.ones(3))
    assert not jax.config.jax_enable_x64
    assert jnp.ones(3).dtype == jnp.float32


def test_native_vjp_uses_the_users_float32() -> None:
    x = _arr((50,), scale=3.0)
    d = _bind(lambda x: jnp.sum(jnp.exp(jnp.sin(x))), x)
    truth = d.vjp(d.x0, np.ones(1))
    native = d.native_vjp(np.ones(1))
    assert native is not None
    assert native.dtype == np.float64
    error = np.max(np.abs(native - truth)) / np.max(np.abs(truth))
    assert 1e-9 < error < 1e-5  # float32 round-off: visible, small


def test_custom_vjp_forward_mode_is_unsupported_not_wrong() -> None:
    @jax.custom_vjp
    def square(x: Any) -> Any:
        return x**2

    square.defvjp(lambda x: (x**2, x), lambda x, g: (2 * x * g,))
    d = _bind(lambda x: jnp.sum(square(x)), jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(d.vjp(d.x0, np.ones(1)), [2.0, 4.0])
    for call in (lambda: d.jvp(d.x0, np.ones(2)), lambda: d.jvps(d.x0, np.ones((2, 2)))):
        with pytest.raises(Unsupported, match="custom_vjp"):
            call()
    hvp = d.gradient_map(np.ones(1))  # the bwd rule is plain JAX: second order works
    np.testing.assert_allclose(hvp.jvp(d.x0, np.array([1.0, 0.0])), [2.0, 0.0])


def test_custom_jvp_rule_and_its_transpose_are_used() -> None:
    @jax.custom_jvp
    def f(x: Any) -> Any:
        return jnp.sin(x)

    f.defjvp(lambda primals, tangents: (f(primals[0]), 3.0 * tangents[0]))  # deliberately 3
    d = _bind(f, jnp.array([0.5, 1.0]))
    np.testing.assert_allclose(d.jvp(d.x0, np.array([1.0, 2.0])), [3.0, 6.0])
    np.testing.assert_allclose(d.vjp(d.x0, np.array([1.0, 2.0])), [3.0, 6.0])


def test_nondiff_argnums_rules_bind() -> None:
    from functools import partial

    @partial(jax.custom_vjp, nondiff_argnums=(0,))
    def apply(g: Callable[[Any], Any], x: Any) -> Any:
        return g(x)

    apply.defvjp(lambda g, x: (g(x), x), lambda g, x, ct: (ct * jax.grad(g)(x),))
    d = _bind(lambda x: apply(jnp.sin, x), jnp.array(0.7))
    expected = np.cos(np.float64(np.float32(0.7)))
    np.testing.assert_allclose(d.vjp(d.x0, np.ones(1)), [expected], rtol=1e-14)


def test_gradient_map_nests_to_the_fourth_derivative_of_log() -> None:
    d = _bind(lambda x: jnp.log(x + 2.0), jnp.array(1.0))
    third = d.gradient_map(np.ones(1)).gradient_map(np.ones(1)).gradient_map(np.ones(1))
    np.testing.assert_allclose(third.value(d.x0), [2 / 27], rtol=1e-14)
    np.testing.assert_allclose(third.jvp(d.x0, np.ones(1)), [-6 / 81], rtol=1e-14)
    np.testing.assert_allclose(third.vjp(d.x0, np.ones(1)), [-6 / 81], rtol=1e-14)
    np.testing.assert_allclose(third.values(np.array([[1.0], [0.0]])), [[2 / 27], [2 / 8]])


def test_untraceable_code_falls_back_to_eager_calls_and_loops() -> None:
    def branchy(x: Any) -> Any:
        return jnp.sin(x) if x[0] > 0 else x  # Python `if` on a value: no jit, no vmap

    d = _bind(branchy, jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(
        d.values(np.array([[1.0, 2.0], [-1.0, 2.0]])), [np.sin([1.0, 2.0]), [-1.0, 2.0]]
    )
    np.testing.assert_allclose(d.vjp(d.x0, np.ones(2)), np.cos([1.0, 2.0]))
    assert any("jax.jit" in n for n in d.notes)
    assert any("loop" in n for n in d.notes)

    def callback(x: Any) -> Any:  # jit works, vmap does not
        return jax.pure_callback(np.sin, jax.ShapeDtypeStruct(x.shape, x.dtype), x)

    d = _bind(callback, jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(
        d.values(np.array([[1.0, 2.0], [3.0, 4.0]])), np.sin([[1.0, 2.0], [3.0, 4.0]])
    )
    assert any("vmap failed" in n for n in d.notes)


def test_batches_are_chunked_and_padded(monkeypatch: pytest.MonkeyPatch) -> None:
    d = _bind(lambda x: jnp.cumsum(x**3), _arr((4,), "float64"))
    monkeypatch.setattr(_common, "CHUNK_BYTES", 8 * (4 + 4) * 4)  # 4 rows per chunk
    xs = _rng[0].standard_normal((11, 4))
    np.testing.assert_allclose(d.values(xs), np.cumsum(xs**3, axis=1), rtol=1e-14)
    np.testing.assert_allclose(d.vjps(d.x0, xs), np.stack([d.vjp(d.x0, u) for u in xs]))


def test_small_batches_of_code_that_reads_a_large_constant_are_padded_to_few_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with jax.enable_x64(True):
        w = jnp.asarray(_rng[0].standard_normal((1000, 1000)) / 30)  # 8 MB read by every row

    def matrix_code(x: Any) -> Any:
        return jnp.sum(jnp.tanh(w @ x) ** 2)

    shapes: list[int] = []
    d = _bind(matrix_code, _arr((1000,), "float64"))
    original = d._programs.batched["value"]
    monkeypatch.setitem(
        d._programs.batched, "value", lambda env, xs: shapes.append(len(xs)) or original(env, xs)
    )
    xs = d.x0 + 1e-3 * _rng[0].standard_normal((3, 1000))
    expected = np.sum(np.tanh(xs @ np.asarray(w).T) ** 2, axis=1)
    np.testing.assert_allclose(d.values(xs)[:, 0], expected, rtol=1e-13)
    assert shapes == [32]  # 256 MiB / 8 MB: not MIN_ROWS = 256 rows of an 8 MB read each
    d = _bind(lambda x: jnp.sum(jnp.tanh(x) ** 2), _arr((1000,), "float64"))
    original = d._programs.batched["value"]
    monkeypatch.setitem(
        d._programs.batched, "value", lambda env, xs: shapes.append(len(xs)) or original(env, xs)
    )
    d.values(xs)
    assert shapes[-1] == 256  # reads nothing beside its own row


def test_small_batch_rows() -> None:
    from gradcheck.adapters.jax._flat import MIN_ROWS, small_batch_rows

    assert small_batch_rows(8 * 11, 0, 4096) == MIN_ROWS
    assert small_batch_rows(8 * 11, 8_000_000, 4096) == 32
    assert small_batch_rows(8 * 11, 10**12, 4096) == 1
    assert small_batch_rows(8 * 11, 0, 64) == 64  # never beyond a chunk
    assert small_batch_rows(8 * 200_000, 0, 4096) == 2  # rows of 1.6 MB: SMALL_BYTES


def test_user_errors_propagate_unchanged() -> None:
    def broken(x: Any) -> Any:
        raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        _bind(broken, jnp.ones(2))


def test_detection_of_jax_objects() -> None:
    adapter = get_adapter([{"w": jnp.ones(2)}])
    assert isinstance(adapter, JaxAdapter)
    assert adapter.handles(jax.jit(jnp.sin))
    assert adapter.handles(jnp.ones(2))
    assert not adapter.handles(np.ones(2))
    assert not adapter.handles({"w": np.ones(2)})
    assert "jax" in {cls.framework for cls in adapters.ADAPTERS}


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ((jnp.arange(3),), "no floating-point input"),
        (({"a": jnp.arange(3), "b": jnp.array(True)},), "without float leaves"),
    ],
)
def test_bad_inputs_are_usage_errors(inputs: tuple[Any, ...], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        _bind(lambda *a: jnp.sum(jnp.ones(2)), *inputs)
    with pytest.raises(UsageError, match=match):
        gc.check(lambda *a: jnp.sum(jnp.ones(2)), *inputs)


def test_integer_outputs_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="floating point"):
        _bind(lambda x: (x, jnp.argmax(x)), jnp.ones(2))


# ---------------------------------------------------------------- verdicts, end to end


def _dense(dtype: str) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    return (lambda x, w, b: jnp.tanh(x @ w + b)), (
        _arr((4, 3), dtype),
        _arr((3, 5), dtype),
        _arr((5,), dtype),
    )


def _conv(dtype: str) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    def conv(x: Any, w: Any) -> Any:
        return jax.lax.conv_general_dilated(x, w, window_strides=(1, 1), padding="SAME")

    return conv, (_arr((1, 2, 5, 5), dtype), _arr((3, 2, 3, 3), dtype))


def _layernorm(dtype: str) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    def layernorm(x: Any, gain: Any, bias: Any) -> Any:
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)
        return (x - mean) / jnp.sqrt(var + 1e-5) * gain + bias

    return layernorm, (_arr((3, 6), dtype), _arr((6,), dtype), _arr((6,), dtype))


def _attention(dtype: str) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    def attention(q: Any, k: Any, v: Any) -> Any:
        return jax.nn.softmax(q @ k.T / jnp.sqrt(q.shape[-1]), axis=-1) @ v

    return attention, (_arr((4, 5), dtype), _arr((4, 5), dtype), _arr((4, 5), dtype))


def _lstm(dtype: str) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    def cell(params: dict[str, Any], x: Any, h: Any, c: Any) -> tuple[Any, Any]:
        z = x @ params["wx"] + h @ params["wh"] + params["b"]
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        return jax.nn.sigmoid(o) * jnp.tanh(c_new), c_new

    params = {
        "wx": _arr((3, 12), dtype, 0.5),
        "wh": _arr((3, 12), dtype, 0.5),
        "b": _arr((12,), dtype),
    }
    return cell, (params, _arr((2, 3), dtype), _arr((2, 3), dtype), _arr((2, 3), dtype))


def _mlp(dtype: str) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    def loss(params: dict[str, Any], x: Any) -> dict[str, Any]:
        for layer in params["layers"]:
            x = jnp.tanh(x @ layer["w"] + layer["b"])
        return {"loss": jnp.mean(x**2)}

    sizes = [(4, 6), (6, 3)]
    params = {"layers": [{"w": _arr(s, dtype, 0.7), "b": _arr(s[1:], dtype)} for s in sizes]}
    return loss, (params, _arr((5, 4), dtype))


LAYERS = {
    "dense": _dense,
    "conv": _conv,
    "layernorm": _layernorm,
    "attention": _attention,
    "lstm": _lstm,
    "mlp": _mlp,
}


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_correct_layers_pass(layer: str, dtype: str, mode: str) -> None:
    fn, inputs = LAYERS[layer](dtype)
    report = gc.check(fn, *inputs, mode=mode)
    assert report.verdict == "pass", str(report)
    assert {"vjp", "jvp"} <= {c.kind for c in report.checks}
    assert ("dtype" in {c.kind for c in report.checks}) == (dtype == "float32")


def _perturbed_grad(fn: Callable[[Any], Any], delta: float) -> Callable[[Any], Any]:
    """fn with a custom_vjp whose gradient is off by a relative `delta` in one entry."""

    @jax.custom_vjp
    def wrapped(x: Any) -> Any:
        return fn(x)

    def bwd(x: Any, g: Any) -> tuple[Any]:
        grad = jax.vjp(fn, x)[1](g)[0]
        return (grad.at[1].multiply(1 + delta),)

    wrapped.defvjp(lambda x: (fn(x), x), bwd)
    return wrapped


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_injected_relative_error_of_1e_6_is_caught(dtype: str) -> None:
    def smooth(x: Any) -> Any:
        return jnp.sum(jnp.sin(x) * jnp.exp(x / 3))

    x = _arr((5,), dtype)
    assert gc.check(_perturbed_grad(smooth, 0.0), x).verdict == "pass"
    report = gc.check(_perturbed_grad(smooth, 1e-6), x)
    assert report.verdict == "fail", str(report)
    assert any("input[0][1]" in e.where for c in report.checks for e in c.worst)


def test_custom_vjp_skips_forward_mode_with_the_reason() -> None:
    report = gc.check(_perturbed_grad(lambda x: jnp.sum(jnp.cos(x) ** 2), 0.0), _arr((4,)))
    assert report.verdict == "pass", str(report)
    assert "jvp" not in {c.kind for c in report.checks if c.verdict != "pass"}
    assert any("custom_vjp" in note for note in report.notes), report.notes


@pytest.mark.parametrize("factor", [1.0, 1.001])
def test_custom_jvp_rule_is_checked_forward_and_transposed(factor: float) -> None:
    @jax.custom_jvp
    def softplus(x: Any) -> Any:
        return jnp.log1p(jnp.exp(x))

    @softplus.defjvp
    def _(primals: tuple[Any], tangents: tuple[Any]) -> tuple[Any, Any]:
        (x,), (t,) = primals, tangents
        return softplus(x), factor * jax.nn.sigmoid(x) * t

    report = gc.check(softplus, _arr((4,), "float64"))
    if factor == 1.0:
        assert report.verdict == "pass", str(report)
    else:
        assert report.verdict == "fail"
        failed = {c.kind for c in report.checks if c.verdict == "fail"}
        assert {"vjp", "jvp"} <= failed


def test_nondiff_argnums_pass_through_a_check() -> None:
    from functools import partial

    @partial(jax.custom_vjp, nondiff_argnums=(1,))
    def scaled(x: Any, power: int) -> Any:
        return x**power

    scaled.defvjp(lambda x, p: (x**p, x), lambda p, x, g: (g * p * x ** (p - 1),))
    report = gc.check(lambda x: scaled(x, 3), _arr((3,), "float64"))
    assert report.verdict == "pass", str(report)


def _round(x: Any) -> Any:
    return jnp.round(x * 4) / 4


def test_straight_through_estimator_matches_its_surrogate() -> None:
    x = jnp.array([0.3, -1.1, 2.4])  # away from the rounding thresholds
    report = gc.check(lambda x: x + jax.lax.stop_gradient(_round(x) - x), x, surrogate=lambda x: x)
    assert report.verdict == "pass", str(report)
    leaky = gc.check(lambda x: x + (_round(x) - x), x, surrogate=lambda x: x)  # no stop_gradient
    assert leaky.verdict == "fail"


def test_gradient_reversal_matches_its_surrogate() -> None:
    @jax.custom_vjp
    def reverse(x: Any) -> Any:
        return x

    reverse.defvjp(lambda x: (x, None), lambda _, g: (-g,))
    x = _arr((4,), "float64")
    assert gc.check(reverse, x, surrogate=lambda x: -x).verdict == "pass"
    forgotten = gc.check(lambda x: x * 1.0, x, surrogate=lambda x: -x)  # reversal never applied
    assert forgotten.verdict == "fail"
    assert "not in effect" in str(forgotten).lower(), str(forgotten)


def test_a_leaked_stop_gradient_on_a_large_leaf_fails() -> None:
    params = {"w": _arr((30, 20), scale=0.2), "b": _arr((20,))}
    x = _arr((8, 30))

    def loss(p: dict[str, Any], x: Any) -> Any:
        return jnp.mean(jnp.tanh(x @ jax.lax.stop_gradient(p["w"]) + p["b"]) ** 2)

    report = gc.check(loss, params, x, wrt=0, mode="fast")
    assert report.verdict == "fail", str(report)
    assert any("input[0]['w']" in e.where for c in report.checks for e in c.worst)


def test_seed_scenario_fourth_derivative_of_log_through_chained_grads() -> None:
    x = jnp.array(1.0)
    report = gc.check(lambda x: jnp.log(x + 2.0), x, order=4)
    assert report.verdict == "pass", str(report)
    assert {c.order for c in report.checks if c.kind == "hvp"} >= {2, 3, 4}
    second = jax.grad(jax.grad(lambda x: jnp.log(x + 2.0)))
    assert gc.check(second, x, order=2).verdict == "pass"


def test_wrong_second_derivative_is_caught() -> None:
    @jax.custom_jvp
    def slope(x: Any) -> Any:
        return 3 * x**2

    slope.defjvp(lambda p, t: (slope(p[0]), 6.01 * p[0] * t[0]))  # 6 is right

    @jax.custom_vjp
    def cube(x: Any) -> Any:
        return x**3

    cube.defvjp(lambda x: (x**3, x), lambda x, g: (g * slope(x),))  # right first derivative
    x = _arr((3,), "float64")
    assert gc.check(cube, x).verdict == "pass"
    report = gc.check(cube, x, order=2)
    assert report.verdict == "fail", str(report)
    assert {c.order for c in report.checks if c.verdict == "fail"} == {2}


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: jnp.sum(jnp.where(x > 0, jnp.sqrt(x), 0.0)),
        lambda x: jnp.sum(jnp.where(x > 0, jnp.log(x), 0.0)),
        lambda x: jnp.where(x[0] ** 2 + x[1] ** 2 > 0, jnp.arctan2(x[0], x[1]), 0.0),
    ],
    ids=["sqrt", "log", "arctan2"],
)
def test_where_over_a_nan_branch_is_nonfinite(fn: Callable[[Any], Any]) -> None:
    x = jnp.array([0.0, 0.0])
    report = gc.check(fn, x)
    assert report.verdict == "nonfinite", str(report)


def test_jitted_functions_and_pytrees_check_end_to_end() -> None:
    fn, (params, x) = _mlp("float32")
    report = gc.check(jax.jit(fn), params, x, wrt=0)
    assert report.verdict == "pass", str(report)
    assert "input[0]['layers'][1]['w']" in " ".join(report.inputs)
    layer = _Linear(_arr((3, 2)), _arr((2,)))
    report = gc.check(lambda lay, x: jnp.sum(jnp.tanh(x @ lay.w + lay.b)), layer, _arr((2, 3)))
    assert report.verdict == "pass", str(report)


def test_a_check_leaves_the_users_float32_program_alone() -> None:
    user_fn = jax.jit(lambda x: jnp.sin(x) * 2)
    x = _arr((3,))
    before = user_fn(x)
    assert gc.check(user_fn, x).passed
    assert jnp.ones(3).dtype == jnp.float32
    assert not jax.config.jax_enable_x64
    assert user_fn(x).dtype == jnp.float32
    np.testing.assert_array_equal(user_fn(x), before)


def test_flat_inputs_reads_a_users_pytree_gradient_by_key_path() -> None:
    params = {"w": _arr((2, 2), "float64"), "n": jnp.array(2)}
    d = _bind(lambda p, x: jnp.sum(p["w"] @ x), params, _arr((2,), "float64"))
    grad = {"w": jnp.ones((2, 2)), "n": None}, jnp.full(2, 3.0)
    np.testing.assert_array_equal(d.flat_inputs(grad), [1, 1, 1, 1, 3, 3])
    with pytest.raises(UsageError, match=r"input\[0\]\['w'\]"):
        d.flat_inputs(({"w": jnp.ones(3)}, jnp.ones(2)))


def test_user_supplied_jax_derivatives_run_in_float64() -> None:
    # needs the checker to call user derivatives inside `Differentiable.scope()` (x64):
    # outside it, `2.0 * x` on a float64 array warns and truncates to float32
    x = _arr((3,), "float64")
    report = gc.check(lambda x: jnp.sum(x**2), x, grad=lambda x: 2.0 * x)
    assert report.verdict == "pass", str(report)
    wrong = gc.check(lambda x: jnp.sum(x**2), x, grad=lambda x: 2.0 * x * (1 + 1e-7))
    assert wrong.verdict == "fail", str(wrong)


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_gelu_network_with_saturated_units_passes(mode: str) -> None:
    """jax.nn.gelu (tanh form) differentiates saturated units by cancelling terms near 1:
    forward mode returned 2.5e-13 for a derivative of 1e-19, and the two modes disagreed by
    up to 10x the old rounding budget (this seed failed before SCALE_ULPS)."""
    rng = np.random.default_rng(4)
    w1, w2 = rng.standard_normal((5, 16)), rng.standard_normal((16, 3))
    x = 2 * rng.standard_normal((4, 5))
    report = gc.check(
        lambda w1, w2, x: jax.nn.gelu(x @ w1) @ w2, *map(jnp.asarray, (w1, w2, x)), mode=mode
    )
    assert report.verdict == "pass", str(report)
