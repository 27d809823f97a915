"""Stencil weights and truncation-error powers against textbook values."""

import pytest

import gradcheck as gc


@pytest.mark.parametrize(
    ("stencil", "offsets", "weights", "powers"),
    [
        (gc.central(1), (-1, 1), (-0.5, 0.5), (2, 4, 6)),
        (gc.central(2), (-1, 0, 1), (1.0, -2.0, 1.0), (2, 4, 6)),
        (gc.central(3), (-2, -1, 1, 2), (-0.5, 1.0, -1.0, 0.5), (2, 4, 6)),
        (gc.central(4), (-2, -1, 0, 1, 2), (1.0, -4.0, 6.0, -4.0, 1.0), (2, 4, 6)),
        (gc.forward(1), (0, 1), (-1.0, 1.0), (1, 2, 3)),
        (gc.backward(1), (0, -1), (1.0, -1.0), (1, 2, 3)),
        (gc.central(1, points=5), (-2, -1, 1, 2), (1 / 12, -2 / 3, 2 / 3, -1 / 12), (4, 6, 8)),
    ],
)
def test_known_stencils(stencil, offsets, weights, powers):
    assert stencil.offsets == offsets
    assert stencil.weights == pytest.approx(weights, abs=1e-15)
    assert stencil.powers[:3] == powers


def test_kinds():
    assert gc.central(2).kind == "central"
    assert gc.forward(2).kind == "forward"
    assert gc.backward(3).kind == "backward"
    assert gc.central(2).uses_center
    assert not gc.central(1).uses_center


@pytest.mark.parametrize("bad", [0, 5, -1])
def test_order_out_of_range(bad):
    with pytest.raises(gc.UsageError, match="order"):
        gc.central(bad)


def test_too_few_points():
    with pytest.raises(gc.UsageError, match="at least 5 points"):
        gc.central(3, points=3)
