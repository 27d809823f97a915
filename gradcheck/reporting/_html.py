"""One self-contained HTML page: summary, every case, and inline SVG plots of the evidence.

No scripts, no external files: the page opens from a CI artifact or an e-mail. Every user
string goes through `html.escape`; the SVG comes from matplotlib (`_plots`), whose text
matplotlib escapes itself. Findings come first and are unfolded, with plots; passing cases
are folded, with plots only when some entry came close to its tolerance. Without matplotlib
the page says how to get the plots instead.
"""

from __future__ import annotations

import html
import json

from ._plots import borderline, have_matplotlib, plots
from ._records import CaseOutcome, Run, printable

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
pre { background: #f6f8fa; padding: .8em; white-space: pre-wrap; font-size: 12px; }
.status { font-weight: 600; padding: 0 .4em; border-radius: .3em; color: #fff; }
.pass { background: #1e8449; } .skipped { background: #7f8c8d; } .finding { background: #c0392b; }
.partial { background: #fdebd0; border: 1px solid #e67e22; padding: .6em; }
section.case { border-top: 1px solid #ddd; padding: .4em 0; }
figure { margin: .5em 0; } figcaption { font-size: 12px; color: #555; }
figure svg { max-width: 100%; height: auto; }
""".strip()


def _text(value: str) -> str:
    return html.escape(printable(value))


def _badge(status: str) -> str:
    kind = status if status in ("pass", "skipped") else "finding"
    return f'<span class="status {kind}">{html.escape(status)}</span>'


def _case(outcome: CaseOutcome, index: int, draw: bool) -> list[str]:
    where = f" <small>{_text(outcome.file)}:{outcome.line or ''}</small>" if outcome.file else ""
    body = [
        f'<section class="case" id="case-{index}">',
        f"<h3>{_badge(outcome.status)} {_text(outcome.name)}{where}</h3>",
        f"<p>{_text(outcome.message)} <small>({outcome.duration:.2f} s)</small></p>",
    ]
    if outcome.text:
        body.append(f"<pre>{_text(outcome.text)}</pre>")
    report = outcome.report
    if draw and report and (outcome.finding or borderline(report)):
        for title, svg in plots(report, salt=f"case{index}"):
            body.append(f"<figure>{svg}<figcaption>{html.escape(title)}</figcaption></figure>")
    body.append("</section>")
    return body


def to_html(run: Run, *, draw_plots: bool = True) -> str:
    """The run as one self-contained HTML page.

    Args:
        run: the audit.
        draw_plots: False leaves the plots out (golden files, no matplotlib wanted).

    Example:
        >>> from gradcheck.reporting import CaseOutcome, Run
        >>> "<title>gradcheck" in to_html(Run((CaseOutcome("f", "pass", 0.5),)))
        True
    """
    draw = draw_plots and have_matplotlib()
    page = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        f"<title>{_text(run.headline())}</title>",
        f"<style>\n{_STYLE}\n</style></head>",
        "<body>",
        f"<h1>{_text(run.headline())}</h1>",
    ]
    if run.partial:
        page.append('<p class="partial">The audit was interrupted: this report is partial.</p>')
    if draw_plots and not draw:
        page.append("<p>Plots need matplotlib: <code>pip install 'gradcheck[plots]'</code>.</p>")
    page.append("<table><tr><th>status</th><th>cases</th></tr>")
    page += [f"<tr><td>{_badge(s)}</td><td>{n}</td></tr>" for s, n in run.counts.items()]
    page.append("</table>")
    if run.meta:
        page.append("<table>")
        for key, value in run.meta.items():
            text = value if isinstance(value, str) else json.dumps(value)
            page.append(f"<tr><th>{_text(str(key))}</th><td>{_text(text)}</td></tr>")
        page.append("</table>")
    order = sorted(range(len(run.outcomes)), key=lambda i: not run.outcomes[i].finding)
    for heading, chosen in (
        ("Findings", [i for i in order if run.outcomes[i].finding]),
        ("Skipped", [i for i in order if run.outcomes[i].status == "skipped"]),
        ("Passing", [i for i in order if run.outcomes[i].status == "pass"]),
    ):
        if not chosen:
            continue
        page.append(f"<h2>{heading} ({len(chosen)})</h2>")
        fold = heading == "Passing"
        if fold:
            page.append("<details><summary>show</summary>")
        for i in chosen:
            page += _case(run.outcomes[i], i, draw)
        if fold:
            page.append("</details>")
    page += ["</body>", "</html>", ""]
    return "\n".join(page)
