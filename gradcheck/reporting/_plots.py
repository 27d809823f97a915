"""Inline SVG plots of one report's evidence, drawn with matplotlib (the optional ``plots`` extra).

Every plot reads only ``Report.to_dict()``:

- worst entries: |analytic − numeric| beside the tolerance and the error bound, per entry;
- the error-vs-step "V curve" of an entry, from ``worst[i]["curve"]`` =
  ``{"step": [...], "estimate": [...]}`` (the estimates the ladder made at each step);
- the Taylor remainder r(h) against h with its slope, from the ``"taylor"`` check's
  ``"remainders"`` = ``[{"where": str, "h": [...], "r": [...], "slope": float | None}]``;
- a per-parameter histogram of log10(|analytic − numeric| / tolerance), from a check's
  ``"histogram"`` = ``{"edges": [...], "counts": {leaf: [...]}}`` when the report carries it,
  else from the worst entries grouped by leaf.

Plots whose data a report lacks are left out. The SVG is deterministic (a fixed hash salt per
plot, which also keeps element ids unique within one HTML page; no date) so that reports diff
cleanly. matplotlib is imported only when a plot is drawn, with its object-oriented API: no
pyplot state, no GUI backend.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

Plot = tuple[str, str]  # (title, svg markup)
RATIO_FLOOR = 1e-6  # |diff| / tolerance shown at least this: an exact 0 would stretch log axes


def have_matplotlib() -> bool:
    """True when matplotlib can be imported (plots are drawn), False otherwise."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _leaf(where: str) -> str:
    """The input or parameter an entry belongs to: ``input[0][2, 1]`` -> ``input[0]``."""
    head = where.partition(" ->")[0]
    match = re.match(r"^(.*?\])\[", head) or re.match(r"^([^\[]*)", head)
    return match.group(1) if match else head


def _shown_checks(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The checks whose entries tell the story: those with a finding, else all of them."""
    checks = list(report.get("checks", ()))
    return [c for c in checks if c.get("verdict") != "pass"] or checks


def _ratios(report: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    for check in _shown_checks(report):
        for entry in check.get("worst", ()):
            tol = float(entry["tolerance"])
            diff = abs(float(entry["analytic"]) - float(entry["numeric"]))
            if tol > 0 and math.isfinite(diff):
                yield _leaf(str(entry["where"])), max(diff / tol, RATIO_FLOOR)


def _svg(draw: Callable[[Any], None], salt: str, size: tuple[float, float] = (6.4, 3.2)) -> str:
    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with rc_context({"svg.hashsalt": salt, "svg.fonttype": "none", "font.size": 9}):
        figure = Figure(figsize=size, layout="constrained")
        FigureCanvasSVG(figure)
        draw(figure)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _worst(report: Mapping[str, Any]) -> Callable[[Any], None] | None:
    entries = [(c["kind"], e) for c in _shown_checks(report) for e in c.get("worst", ())]
    entries = [(k, e) for k, e in entries if float(e["tolerance"]) > 0][:12]
    if not entries:
        return None

    def draw(figure: Any) -> None:
        axes = figure.add_subplot()
        labels = [f"{k}: {e['where']}" for k, e in entries]
        y = range(len(entries))
        floor = RATIO_FLOOR * min(e["tolerance"] for _, e in entries)
        diff = [max(abs(e["analytic"] - e["numeric"]), floor) for _, e in entries]
        axes.barh(y, diff, color="#c0392b", label="|analytic − numeric|")
        axes.scatter(
            [e["tolerance"] for _, e in entries],
            y,
            marker="|",
            s=300,
            color="k",
            label="tolerance",
            zorder=3,
        )
        axes.scatter(
            [max(e["bound"], floor) for _, e in entries],
            y,
            marker="x",
            color="#2471a3",
            label="numeric error bound",
            zorder=3,
        )
        axes.set_xscale("log")
        axes.set_yticks(list(y), labels)
        axes.invert_yaxis()
        figure.legend(loc="outside lower center", ncols=3, fontsize=7)

    return draw


def _v_curves(report: Mapping[str, Any]) -> Callable[[Any], None] | None:
    curves = [
        (e, e["curve"])
        for c in _shown_checks(report)
        for e in c.get("worst", ())
        if isinstance(e.get("curve"), Mapping) and e["curve"].get("step")
    ][:4]
    if not curves:
        return None

    def draw(figure: Any) -> None:
        axes = figure.add_subplot()
        for entry, curve in curves:
            error = [
                max(abs(v - entry["analytic"]), RATIO_FLOOR * entry["tolerance"])
                for v in curve["estimate"]
            ]
            (line,) = axes.loglog(curve["step"], error, "o-", ms=3, label=str(entry["where"]))
            axes.axvline(entry["step"], color=line.get_color(), ls=":", lw=1)
        axes.set_xlabel("step h")
        axes.set_ylabel("|estimate(h) − analytic|")
        axes.legend(loc="best", fontsize=7)

    return draw


def _taylor(report: Mapping[str, Any]) -> Callable[[Any], None] | None:
    series = [
        r
        for c in report.get("checks", ())
        if c.get("kind") == "taylor"
        for r in c.get("remainders", ())
        if r.get("h")
    ][:4]
    if not series:
        return None

    def draw(figure: Any) -> None:
        axes = figure.add_subplot()
        for s in series:
            slope = "?" if s.get("slope") is None else f"{s['slope']:.2f}"
            axes.loglog(s["h"], s["r"], "o-", ms=3, label=f"{s['where']} (slope {slope})")
        h0, r0 = series[0]["h"][0], series[0]["r"][0]
        for power, style in ((1, "--"), (2, ":")):
            hs = [h0, h0 * 1e-3]
            axes.loglog(
                hs,
                [r0 * (h / h0) ** power for h in hs],
                "k" + style,
                lw=1,
                label=f"slope {power} ({'wrong' if power == 1 else 'right'})",
            )
        axes.set_xlabel("step h")
        axes.set_ylabel("Taylor remainder r(h)")
        axes.legend(loc="best", fontsize=7)

    return draw


def _histogram(report: Mapping[str, Any]) -> Callable[[Any], None] | None:
    given = [c["histogram"] for c in report.get("checks", ()) if c.get("histogram")]
    by_leaf: dict[str, list[float]] = {}
    for leaf, ratio in _ratios(report):
        by_leaf.setdefault(leaf, []).append(math.log10(ratio))
    if not given and not by_leaf:
        return None

    def draw(figure: Any) -> None:
        axes = figure.add_subplot()
        if given:
            edges = given[0]["edges"]
            for leaf, counts in given[0]["counts"].items():
                axes.stairs(counts, edges, label=str(leaf))
        else:
            values = [v for vs in by_leaf.values() for v in vs]
            low, high = math.floor(min(-1.0, *values)), math.ceil(max(1.0, *values))
            bins = [low + k / 2 for k in range(2 * (high - low) + 1)]  # half a decade each
            axes.hist(list(by_leaf.values()), bins=bins, stacked=True, label=list(by_leaf))
            axes.set_title("worst entries only", fontsize=8)
        axes.axvline(0.0, color="k", ls="--", lw=1)
        axes.set_xlabel("log10(|analytic − numeric| / tolerance)  (> 0 fails)")
        axes.set_ylabel("entries")
        axes.legend(loc="best", fontsize=7)

    return draw


PLOTS: tuple[tuple[str, Callable[[Mapping[str, Any]], Callable[[Any], None] | None]], ...] = (
    ("worst entries against their tolerance", _worst),
    ("error against step (V curve)", _v_curves),
    ("Taylor remainder", _taylor),
    ("error per input or parameter", _histogram),
)


def plots(report: Mapping[str, Any], salt: str) -> list[Plot]:
    """The plots the report has data for, as (title, svg); `salt` makes element ids unique."""
    drawn = []
    for index, (title, make) in enumerate(PLOTS):
        draw = make(report)
        if draw is not None:
            drawn.append((title, _svg(draw, f"{salt}-{index}")))
    return drawn


def borderline(report: Mapping[str, Any]) -> bool:
    """True when an entry used over a tenth of its tolerance: worth a plot even if it passes."""
    return any(ratio > 0.1 for _, ratio in _ratios(report))
