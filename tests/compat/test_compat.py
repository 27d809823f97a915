"""gradcheck.compat: suites written for the anchors pass unchanged after swapping the import."""

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import gradcheck as gc

HERE = Path(__file__).parent


def load(name: str, replace: tuple[str, str] | None) -> ModuleType:
    """The suite module as written, or with one import line swapped (nothing else)."""
    source = (HERE / f"{name}.py").read_text()
    if replace is not None:
        assert source.count(replace[0]) == 1
        source = source.replace(*replace)
    module = ModuleType(f"tests.compat.{name}_{'swapped' if replace else 'anchor'}")
    module.__file__ = str(HERE / f"{name}.py")
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def suite_tests(module: ModuleType) -> list[str]:
    return sorted(n for n in vars(module) if n.startswith("test_"))


TORCH_SWAP = (
    "from torch.autograd import gradcheck, gradgradcheck",
    "from gradcheck.compat import gradcheck, gradgradcheck",
)
JAX_SWAP = ("from jax.test_util import check_grads", "from gradcheck.compat import check_grads")


# torch's own forward-mode check loads decompositions through the deprecated torch.jit.script
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("swap", [None, TORCH_SWAP], ids=["torch", "gradcheck"])
def test_torch_suite_passes_with_either_checker(swap):
    pytest.importorskip("torch")
    suite = load("torch_suite", swap)
    for name in suite_tests(suite):
        getattr(suite, name)()


@pytest.mark.parametrize("swap", [None, JAX_SWAP], ids=["jax", "gradcheck"])
def test_jax_suite_passes_with_either_checker(swap):
    pytest.importorskip("jax")
    suite = load("jax_suite", swap)
    for name in suite_tests(suite):
        getattr(suite, name)()


def test_the_error_is_torchs_and_ours():
    torch = pytest.importorskip("torch")
    from gradcheck.compat import gradcheck

    error_type = importlib.import_module("torch.autograd.gradcheck").GradcheckError

    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            ctx.save_for_backward(t)
            return t * t

        @staticmethod
        def backward(ctx, grad):
            (t,) = ctx.saved_tensors
            return 2.001 * t * grad

    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(error_type) as caught:
        gradcheck(Wrong.apply, (x,))
    assert isinstance(caught.value, gc.GradientError)
    assert isinstance(caught.value, AssertionError)
    assert caught.value.report.verdict == "fail"
    assert "Wrong" in str(caught.value)


def test_eps_and_tolerances_reach_the_check(monkeypatch):
    torch = pytest.importorskip("torch")
    import gradcheck.compat as compat

    reports = []

    def recording(*args, **kwargs):
        reports.append(gc.check(*args, **kwargs))
        return reports[-1]

    monkeypatch.setattr(compat, "check", recording)
    x = torch.tensor([0.5, 1.0], dtype=torch.float64, requires_grad=True)
    assert compat.gradcheck(torch.sin, (x,), eps=1e-4, atol=1e-6, rtol=1e-4)
    (report,) = reports
    assert any("step=0.0001" in note for note in report.notes)
    assert {(c.tolerance.atol, c.tolerance.rtol) for c in report.checks if c.tolerance} == {
        (1e-6, 1e-4)
    }


def test_user_tensors_are_left_as_they_were():
    torch = pytest.importorskip("torch")
    from gradcheck.compat import gradgradcheck

    x = torch.randn(3, dtype=torch.float32, requires_grad=True)
    before = x.detach().clone()
    assert gradgradcheck(lambda t: (t**3).sum(), (x,))
    assert x.grad is None
    assert torch.equal(x.detach(), before)
    assert x.dtype == torch.float32


def test_check_grads_rejects_unknown_modes():
    pytest.importorskip("jax")
    from gradcheck.compat import check_grads

    with pytest.raises(gc.UsageError, match="modes"):
        check_grads(np.sin, (np.ones(2),), order=1, modes=("backward",))
