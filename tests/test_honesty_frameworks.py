"""The honest-verdict classes of tests/test_honesty.py, on the real frameworks where they were
found (PyTorch's OpInfo database, TF where-traps, JAX lax primitives)."""

import numpy as np
import pytest

import gradcheck as gc


def test_unseeded_torch_dropout_is_nondeterministic_whatever_the_seed():
    torch = pytest.importorskip("torch")
    x = torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    verdicts = {
        gc.check(
            lambda t: torch.nn.functional.dropout(t, 0.5, training=True).sum(), x, seed=seed
        ).verdict
        for seed in range(20)
    }
    assert verdicts == {"nondeterministic"}


@pytest.mark.parametrize(
    ("name", "points"),
    [
        ("floor", [7.5, 0.3, -2.7, 100.3]),
        ("ceil", [7.5, 0.3, -2.7]),
        ("trunc", [7.5, 0.3, -2.7]),
        ("frac", [7.5, 0.3, -2.7]),
        ("round", [7.0, 0.3, -2.7]),
    ],
)
def test_torch_staircases_pass_between_jumps(name, points):
    torch = pytest.importorskip("torch")
    op = getattr(torch, name)
    report = gc.check(op, torch.tensor(points, dtype=torch.float64))
    assert report.verdict == "pass", str(report)


def test_torch_round_with_decimals_passes():
    torch = pytest.importorskip("torch")
    x = torch.tensor([7.54, 0.32, -2.71], dtype=torch.float64)
    assert gc.check(lambda t: torch.round(t, decimals=1), x).verdict == "pass"


def test_torch_where_at_its_threshold_is_nondifferentiable():
    torch = pytest.importorskip("torch")
    x = torch.tensor([0.5, 0.2], dtype=torch.float64)
    report = gc.check(lambda t: torch.where(t > 0.5, t + 1, t), x)
    assert report.verdict == "nondifferentiable", str(report)


def test_log_space_backward_at_large_arguments_is_within_its_rounding():
    """logcumsumexp at 1e4 returns 1 + 6e-13 for an exact 1 (|x|·eps of cancellation)."""
    torch = pytest.importorskip("torch")
    x = torch.tensor([1e4, 1e4 + 1, 1e4 - 2], dtype=torch.float64)
    report = gc.check(lambda t: torch.logcumsumexp(t, 0), x, checks=("vjp",))
    assert report.verdict == "pass", str(report)


def test_torch_hardsigmoid_float32_sixth_is_still_found():
    """A real defect (float64 hardsigmoid backward uses float32(1/6)) must stay visible."""
    torch = pytest.importorskip("torch")
    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    report = gc.check(torch.nn.functional.hardsigmoid, x)
    assert report.verdict == "fail", str(report)


def test_torch_digamma_derivative_4e11_off_is_still_found():
    """torch's trigamma near -0.6 is 4e-11 off (verified against mpmath): the full ladder
    resolves it to 2e-13; early agreement at 1e-10 let it pass (Note: Early agreement)."""
    torch = pytest.importorskip("torch")
    x = torch.tensor([-0.6046891126565539], dtype=torch.float64, requires_grad=True)
    assert gc.check(torch.digamma, x).verdict == "fail"


def test_tf_where_sqrt_trap_at_zero_is_not_a_pass():
    tf = pytest.importorskip("tensorflow")
    x = tf.constant([0.0, 1.0, 2.0], tf.float64)
    report = gc.check(lambda t: tf.reduce_sum(tf.where(t > 0, tf.sqrt(t), tf.zeros_like(t))), x)
    assert report.verdict != "pass", str(report)


def test_jax_rem_between_jumps_passes():
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    x = jnp.array([100.47, 3.47, -7.2], dtype=jnp.float32)  # promoted to float64 by the check
    report = gc.check(lambda t: jnp.sum(jax.lax.rem(t, 1.0)), x)
    assert report.verdict == "pass", str(report)
    wrong = gc.check(
        lambda t: jnp.sum(jax.lax.rem(t, 1.0)), x, grad=lambda t: np.zeros(3), framework="jax"
    )
    assert wrong.verdict == "fail", str(wrong)


def test_a_closure_over_a_float32_keras_model_called_with_numpy_is_checked_by_its_framework():
    """NumPy inputs, Keras outputs: bound to TensorFlow with a note; the block structure of a
    batch (exact zeros across samples) and float32 round-off are not 'unresolved'."""
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="tanh")])
    x = np.random.default_rng(0).standard_normal((2, 3))
    report = gc.check(lambda t: model(t), x)
    assert report.verdict == "pass", str(report)
    assert report.framework == "tensorflow"
    assert any("framework='tensorflow'" in note for note in report.notes)


def test_a_straight_through_estimator_followed_by_parameters_is_not_called_bypassed():
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, dtype=torch.float64, generator=gen)
    theta = torch.randn(4, dtype=torch.float64, generator=gen)

    def ste(t):
        return t + (torch.sign(t) - t).detach()

    def surrogate(x, th):
        return (th * x).sum()

    in_effect = gc.check(lambda x, th: (th * ste(x)).sum(), x, theta, surrogate=surrogate)
    assert in_effect.verdict == "fail"  # the parameters' entries: the surrogate changes them
    assert "in effect where it applies" in in_effect.checks[0].cause
    assert gc.check(lambda x, th: (th * ste(x)).sum(), x, theta, surrogate=surrogate, wrt=0).passed
    bypassed = gc.check(lambda x, th: (th * torch.sign(x)).sum(), x, theta, surrogate=surrogate)
    assert "NOT in effect" in bypassed.checks[0].cause


@pytest.mark.parametrize("x", [1e-9, 1e-8, 1e-7])
def test_torch_log_cosh_near_zero_passes_in_both_modes(x):
    """The log-cosh loss at a near-perfect fit: its values are rounded by cosh(x) ≈ 1."""
    torch = pytest.importorskip("torch")
    point = torch.tensor([x], dtype=torch.float64, requires_grad=True)
    for mode in ("full", "fast"):
        report = gc.check(lambda t: torch.log(torch.cosh(t)).sum(), point, mode=mode)
        assert report.verdict == "pass", report


def test_torch_layer_norm_over_one_element_passes_in_fast_mode():
    """OpInfo's layer_norm samples with normalized_shape (1,): the weight's derivative is 0
    exactly and torch's backward returns 8e-16 beside O(1) bias derivatives; fast mode once
    weighed that rounding against itself."""
    torch = pytest.importorskip("torch")
    x, w, b = (torch.tensor([v], dtype=torch.float64) for v in (0.3, -4.827, -7.5824))
    for mode in ("full", "fast"):
        report = gc.check(
            lambda x, w, b: torch.nn.functional.layer_norm(x, (1,), w, b), x, w, b, mode=mode
        )
        assert report.verdict == "pass", report


def test_torch_roll_of_a_scalar_under_vmap_is_caught_and_looped():
    """torch.func.vmap of torch.roll on a 0-d tensor rolls across the batch (OpInfo roll[16]):
    fast mode read the permuted values as a sign flip. vmap is trusted only once a batch of
    distinct points agrees with plain evaluations at both ends."""
    torch = pytest.importorskip("torch")
    x = torch.tensor(1.304, dtype=torch.float64)
    for mode in ("full", "fast"):
        report = gc.check(lambda t: torch.roll(t, 10) * t.sin(), x, mode=mode)
        assert report.verdict == "pass", report
        assert any("vmap disagreed with a plain evaluation" in note for note in report.notes)


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_torch_rounding_garbage_of_an_exact_zero_derivative_is_not_a_failure(mode):
    """OpInfo native_layer_norm[10] (one element, no bias) and corrcoef[2] (two observations):
    the derivatives are exactly 0 and the differences find exactly 0, but torch's backward
    cancels terms near 1500 (layer_norm) and returns ±1e-13. It changes erratically between
    points 1e-9 apart: rounding, so the entry is unresolved, not wrong."""
    torch = pytest.importorskip("torch")
    x, w = (torch.tensor([-4.826984902407649], dtype=torch.float64) for _ in range(2))
    layer = gc.check(lambda x, w: torch.nn.functional.layer_norm(x, (1,), w), x, w, mode=mode)
    assert layer.verdict == "inconclusive", layer
    assert "rounding noise" in str(layer)
    series = torch.tensor([[0.3, -1.2], [2.0, 0.7], [-0.4, 1.9]], dtype=torch.float64)
    assert gc.check(torch.corrcoef, series, mode=mode).verdict in ("pass", "inconclusive")


def test_torch_a_wrong_derivative_beside_rounding_garbage_still_fails():
    """The measured noise of the analytic side does not hide a real error: layer_norm's
    weight derivative (exactly 0, returned as ±1e-13) plus a wrong 1e-9."""
    torch = pytest.importorskip("torch")

    class Shifted(torch.autograd.Function):
        @staticmethod
        def forward(x, w):
            return torch.nn.functional.layer_norm(x, (1,), w)

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(*inputs)

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            with torch.enable_grad():
                x_, w_ = x.detach().requires_grad_(), w.detach().requires_grad_()
                gx, gw = torch.autograd.grad(
                    torch.nn.functional.layer_norm(x_, (1,), w_), (x_, w_), g
                )
            return gx, gw + 1e-9 * g

    x, w = (torch.tensor([-4.826984902407649], dtype=torch.float64) for _ in range(2))
    for mode in ("full", "fast"):
        report = gc.check(Shifted.apply, x, w, mode=mode)
        assert report.verdict == "fail", report


@pytest.mark.parametrize(("seed", "mode"), [(23, "fast"), (35, "fast"), (17, "full"), (36, "full")])
def test_torch_pinv_of_a_rank_deficient_product_passes(seed, mode):
    """OpInfo's linalg.pinv.singular: pinv(a @ b.mT) with orthonormal a (3×2) and b (50×2)
    (sample 35 is its batched form). The SVD is exact at the point (two equal singular
    values) and rounds coherently a millistep away, heavy-tailed (one sample 40 sigma off the
    measured noise): power-of-two ladders that reach the same rows "confirm" each other at a
    fifth of their true error. Fast mode failed at seeds 23 and 35 until a second grid of
    steps (1.5·2^k) disagreed and the bound covered both; full mode failed on 7 of the first
    40 seeds by 1.0-2.1x the budget, these two among them, until a veto counted at validated
    precision and an agreeing second grid bounded the first by their gap (Note: A second
    grid of steps in `_judge`; Note: Vetoes at validated precision in `_fd.estimate`)."""
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(seed)
    a = torch.linalg.qr(torch.rand(3, 2, dtype=torch.float64, generator=g)).Q.requires_grad_()
    b = torch.linalg.qr(torch.rand(50, 2, dtype=torch.float64, generator=g)).Q.requires_grad_()
    report = gc.check(lambda a, b: torch.linalg.pinv(a @ b.mT), a, b, mode=mode)
    assert report.verdict == "pass", report
    if mode == "full":  # forward mode is judged on the numbers reverse mode refined
        vjp, jvp = (next(c for c in report.checks if c.kind == k) for k in ("vjp", "jvp"))
        assert jvp.evaluations < 0.1 * vjp.evaluations  # 15,318 of 22,778 at seed 17 before
