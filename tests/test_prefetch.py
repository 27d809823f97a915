"""Evaluating ahead: the first ladder rows and the noise table go with the preflight's call."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import gradcheck as gc
from gradcheck._fd import Coordinates, directional, opening_points
from gradcheck._prefetch import PREFETCH_COORDINATES, Prefetched
from gradcheck.adapters.numpy import NumpyAdapter, NumpyFlat


class Calls:
    """Records every batched call a bound NumPy function gets."""

    def __init__(self, fn: NumpyFlat) -> None:
        self.batches: list[np.ndarray] = []
        original = fn.values

        def values(xs: np.ndarray) -> np.ndarray:
            self.batches.append(np.array(xs))
            return original(xs)

        fn.values = values  # type: ignore[method-assign]


def bound(f: Any, x: np.ndarray) -> NumpyFlat:
    fn = NumpyAdapter().bind(f, (x,), {}, None)
    assert isinstance(fn, NumpyFlat)
    return fn


@pytest.mark.parametrize(
    ("f", "jacobian", "x"),
    [
        (lambda v: 3 * v - v.sum(), lambda v: 3 * np.eye(v.size) - 1, [0.3, -1.2, 4.0]),
        (lambda v: 3 * v - v.sum(), lambda v: 3 * np.eye(v.size) - 1, [0.0, 0.5, 2.0]),
        (
            lambda v: np.sin(v) * v.sum(),
            lambda v: np.diag(np.cos(v)) * v.sum() + np.sin(v)[:, None],
            [0.3, -1.2, 4.0],
        ),
    ],
    ids=["linear", "linear-at-zero", "smooth"],
)
def test_opening_points_hold_every_point_the_first_ladders_ask_for(
    f: Any, jacobian: Any, x: list[float]
) -> None:
    """Ladders that agree with the analytic values (Note: Early agreement), linear or not,
    ask for nothing beyond the opening points; their estimates are those of asking."""
    fn = bound(f, np.array(x))
    every = Coordinates(np.arange(fn.n), fn.n)
    expected = (jacobian(fn.x0).T,)
    f0 = fn.value(fn.x0)
    asked = directional(fn, f0, every, expected=expected)
    ahead = opening_points(fn, every)
    prefetched = Prefetched(fn, ahead, fn.values(ahead))
    calls = Calls(fn)
    answered = directional(prefetched, f0, every, expected=expected)
    assert calls.batches == []
    np.testing.assert_array_equal(answered.value, asked.value)
    np.testing.assert_array_equal(answered.error, asked.error)


def test_each_prefetched_value_answers_one_request_for_exactly_its_point() -> None:
    fn = bound(lambda v: np.cos(v), np.array([0.5, 2.0]))
    calls = Calls(fn)
    points = fn.x0 + np.array([[1e-3, 0.0], [0.0, 1e-3]])
    stand_in = np.full((2, 2), 7.0)  # not f's values: shows which answers come from the store
    prefetched = Prefetched(fn, points, stand_in)
    nearby = points[0] + np.array([np.finfo(float).eps, 0.0])
    first = prefetched.values(np.stack([points[1], nearby, points[0]]))
    np.testing.assert_array_equal(first[[0, 2]], stand_in)
    np.testing.assert_array_equal(first[1], np.cos(nearby))  # one ulp off: evaluated
    again = prefetched.values(points)  # each known value is handed out once
    np.testing.assert_array_equal(again, np.cos(points))
    assert [len(b) for b in calls.batches] == [1, 2]


def counted_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the batched calls every bound NumPy function gets from now on."""
    sizes: list[int] = []
    original = NumpyFlat.values

    def values(self: NumpyFlat, xs: np.ndarray) -> np.ndarray:
        sizes.append(len(xs))
        return original(self, xs)

    monkeypatch.setattr(NumpyFlat, "values", values)
    return sizes


@pytest.mark.parametrize(
    ("f", "jacobian"),
    [
        (np.sin, lambda v: np.diag(np.cos(v))),
        (lambda v: 2 * v + v[::-1], lambda v: 2 * np.eye(v.size) + np.eye(v.size)[::-1]),
    ],
    ids=["smooth", "linear"],
)
def test_a_small_full_check_makes_one_batched_call(
    monkeypatch: pytest.MonkeyPatch, f: Any, jacobian: Any
) -> None:
    """Repeats at x0, the noise table, the first ladder rows and the linear probe go in one
    call; a smooth function needs no other, a linear one a second look at its noise (its
    table moves by exactly the same amount per point: Note: Aligned rounding in `_fd.noise`)."""
    x = np.array([0.3, -1.2, 0.7])
    sizes = counted_calls(monkeypatch)
    report = gc.check(f, x, jacobian=jacobian)
    assert report.verdict == "pass"
    first = 2 + 9 + 6 * x.size + 2 * x.size  # repeats, noise, 3 rows, the probe
    assert sizes == ([first] if f is np.sin else [first, 2 * 9])


def test_large_checks_do_not_evaluate_ladder_points_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.linspace(0.1, 1.0, PREFETCH_COORDINATES + 1)
    sizes = counted_calls(monkeypatch)
    gc.check(np.sin, x, jacobian=lambda v: np.diag(np.cos(v)))
    assert sizes[0] == 2 + 9


@pytest.mark.parametrize(
    ("f", "jacobian"),
    [
        (np.sin, lambda v: np.diag(np.cos(v))),
        (lambda v: 2 * v + v[::-1], lambda v: 2 * np.eye(v.size) + np.eye(v.size)[::-1]),
        (lambda v: np.floor(40 * v), lambda v: np.zeros((v.size, v.size))),
    ],
    ids=["smooth", "linear", "staircase"],
)
def test_estimates_are_those_of_separate_calls(
    monkeypatch: pytest.MonkeyPatch, f: Any, jacobian: Any
) -> None:
    x = np.array([0.3, -1.2, 0.7])
    ahead = gc.check(f, x, jacobian=jacobian)
    monkeypatch.setattr("gradcheck._prefetch.PREFETCH_COORDINATES", 0)
    alone = gc.check(f, x, jacobian=jacobian)
    as_text = [json.dumps(c.to_dict(), sort_keys=True) for c in (*ahead.checks, *alone.checks)]
    assert as_text[: len(ahead.checks)] == as_text[len(ahead.checks) :]  # NaN equals NaN here
