"""The OpInfo sweep's Markdown report, rendered from its JSON lines.

Agreement matrices (torch slow verdict x gc.check full / fast verdict), then every
disagreement in its class, then the time figures. Classes (issues #10, #11, #12):
(a) false alarm: torch passes, gradcheck says fail or raises — what the engine must fix;
(b) refusal: torch passes, gradcheck raises UsageError (complex, empty, -inf ...);
(c) a real PyTorch defect, verified against an independent reference (`_opinfo_defects`);
(d) a convention difference; (e) torch passes, gradcheck says inconclusive, nondifferentiable,
nondeterministic or nonfinite, with a judgement of who is right where one has been made.
Classes (c), (d) and the judgements of (e) are decisions made by reading the evidence; they
live in `_opinfo_defects` beside the code that verifies them.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from _common import write_atomically
from _opinfo_defects import (
    CAUSES,
    CONVENTIONS,
    DEFECT_KINDS,
    DEFECTS,
    JUDGEMENTS,
    TORCH_FAILS,
    verify,
)

GC_VERDICTS = (
    "pass",
    "fail",
    "nondifferentiable",
    "nonfinite",
    "nondeterministic",
    "inconclusive",
    "refused",
    "raised",
    "timeout",
    "crashed",
    "not run",
    "skipped",
)
TORCH_VERDICTS = ("pass", "fail", "error", "timeout", "crashed", "not run", "skipped")
UNCERTAIN = ("inconclusive", "nondifferentiable", "nondeterministic", "nonfinite")
# Empty inputs apart: gc returns at once there ("nothing to differentiate"), and counted
# with the small samples they would pull that median down.
BUCKETS = (
    ("n = 0", 0, 1),
    ("1 <= n < 10", 1, 10),
    ("10-100", 10, 100),
    ("100-1000", 100, 1000),
    ("> 1000", 1000, 0),
)


def _key(r: dict[str, Any]) -> str:
    return f"{r['op']}[{r['index']}]"


def _cell(text: str, limit: int = 260) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f}"


def matrix(rows: list[dict[str, Any]], mode: str) -> list[str]:
    counts = Counter((r["torch"]["verdict"], r[mode]["verdict"]) for r in rows)
    cols = [v for v in GC_VERDICTS if any(c[1] == v for c in counts)]
    lines = [
        f"| torch slow \\ gc {mode} | " + " | ".join(cols) + " | total |",
        "|---|" + "---:|" * (len(cols) + 1),
    ]
    for t in TORCH_VERDICTS:
        row = [counts[t, c] for c in cols]
        if sum(row):
            lines.append(f"| **{t}** | " + " | ".join(str(v) for v in row) + f" | {sum(row)} |")
    total = [sum(counts[t, c] for t in TORCH_VERDICTS) for c in cols]
    lines.append("| total | " + " | ".join(str(v) for v in total) + f" | {sum(total)} |")
    return lines


def _modes(r: dict[str, Any], verdicts: Iterable[str]) -> list[str]:
    wanted = set(verdicts)
    return [m for m in ("full", "fast") if r[m]["verdict"] in wanted]


def _evidence(r: dict[str, Any], mode: str) -> str:
    res = r[mode]
    parts = [f"{mode}: **{res['verdict']}**", res.get("detail", "")]
    if res.get("note"):
        parts.append("note: " + res["note"])
    return _cell(" — ".join(p for p in parts if p), 420)


def disagreement_lists(rows: list[dict[str, Any]]) -> list[str]:
    agreeing = [r for r in rows if r["torch"]["verdict"] == "pass"]
    alarms, refusals, defects, conventions, uncertain = [], [], [], [], []
    for r in agreeing:
        bad = _modes(r, ("fail", "raised", "timeout", "crashed"))
        if bad and r["op"] in DEFECTS and _defect_applies(r, bad):
            defects.append(r)
        elif bad and r["op"] in CONVENTIONS:
            conventions.append(r)
        elif bad:
            alarms.append(r)
        if _modes(r, ("refused",)):
            refusals.append(r)
        if _modes(r, UNCERTAIN):
            uncertain.append(r)
    out = ["## Disagreements", ""]
    bad = ("fail", "raised", "timeout", "crashed")
    out += [
        f"### (a) False alarms: torch passes, gradcheck says fail or raises ({len(alarms)})",
        "",
        "What the engine must fix, by op. Timeouts and crashes of gradcheck on a sample torch"
        " passes are listed here too. Evidence: gc's worst entry of the deciding check (or its"
        " message) and its first note, for the op's first flagged sample; every sample's"
        " evidence follows the table.",
        "",
        *grouped(alarms, bad),
    ]
    out += [
        "",
        f"### (b) Refusals: torch passes, gradcheck raises UsageError ({len(refusals)})",
        "",
    ]
    reasons: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in refusals:
        modes = _modes(r, ("refused",))
        mark = "" if len(modes) == 2 else f" ({modes[0]} only)"
        reason = _refusal_reason(r[modes[0]]["detail"])
        reasons[reason][r["op"]].append(f"{r['index']}{mark}")
    out += ["| reason | samples | ops: sample indices |", "|---|---:|---|"]
    for reason, ops in sorted(reasons.items(), key=lambda kv: -sum(map(len, kv[1].values()))):
        listed = "; ".join(f"{op} {', '.join(keys)}" for op, keys in sorted(ops.items()))
        count = sum(map(len, ops.values()))
        out.append(f"| {reason} | {count} | {_cell(listed, 6000)} |")
    out += ["", f"### (c) Real PyTorch defects, verified by hand ({len(defects)} samples)", ""]
    for op in sorted({r["op"] for r in defects} | set(DEFECTS)):
        hits = [r for r in defects if r["op"] == op]
        out.append(f"- **{op}**: {DEFECTS[op]}")
        out.append(f"  - samples flagged: {', '.join(_key(r) for r in hits) or 'none in this run'}")
        for r in hits[:2]:
            for m in _modes(r, ("fail", "raised")):
                out.append(f"  - {_key(r)} {_evidence(r, m)}")
        first = hits[0] if hits else None
        detail = ""
        if first is not None:
            detail = next(first[m]["detail"] for m in _modes(first, ("fail", "raised")))
        out.append(f"  - verification: {verify(op, first and first['index'], detail)}")
    out += ["", f"### (d) Convention differences ({len(conventions)} samples)", ""]
    for op in sorted({r["op"] for r in conventions}):
        keys = ", ".join(_key(r) for r in conventions if r["op"] == op)
        out.append(f"- **{op}** ({keys}): {CONVENTIONS[op]}")
    if not conventions:
        out.append("- none")
    out += [
        "",
        f"### (e) torch passes, gradcheck is not sure ({len(uncertain)} samples)",
        "",
        "inconclusive / nondifferentiable / nondeterministic / nonfinite where torch's slow"
        " check passes, with a judgement where the evidence has been read.",
        "",
        *grouped(uncertain, UNCERTAIN, causes=False),
        "",
        "Judgements:",
        "",
    ]
    for op in sorted({r["op"] for r in uncertain}):
        out.append(f"- **{op}**: {JUDGEMENTS.get(op, 'not judged yet')}")
    return out


def _defect_applies(r: dict[str, Any], modes: list[str]) -> bool:
    """The op's verified defect explains this flag: same kind of check (DEFECT_KINDS)."""
    kinds = DEFECT_KINDS.get(r["op"])
    return kinds is None or any(r[m]["detail"].split(":")[0] in kinds for m in modes)


def grouped(
    rows: list[dict[str, Any]], verdicts: tuple[str, ...], causes: bool = True
) -> list[str]:
    """One table row per op (its flagged samples per mode, n range, first evidence), then
    every flagged sample's evidence in a collapsed list."""
    by_op: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_op[r["op"]].append(r)
    out = [
        "| op | samples flagged by gc full | by gc fast | n | cause | evidence (first flagged"
        " sample) |",
        "|---|---|---|---|---|---|",
    ]
    every = []
    for op, hits in sorted(by_op.items()):
        flagged = {
            m: [str(r["index"]) for r in hits if r[m]["verdict"] in verdicts]
            for m in ("full", "fast")
        }
        first = hits[0]
        evidence = "<br>".join(
            f"[{first['index']}] {_evidence(first, m)}" for m in _modes(first, verdicts)
        )
        sizes = sorted(r.get("n") or 0 for r in hits)
        out.append(
            f"| {op} | {', '.join(flagged['full']) or '-'} | {', '.join(flagged['fast']) or '-'} |"
            f" {sizes[0]}–{sizes[-1]} | {_cause(op, hits, verdicts) if causes else '-'} |"
            f" {evidence} |"
        )
        every += [f"- {_key(r)} {_evidence(r, m)}" for r in hits for m in _modes(r, verdicts)]
    if every:
        out += ["", "<details><summary>Every flagged sample's evidence</summary>", "", *every]
        out += ["", "</details>"]
    return out


def _cause(op: str, hits: list[dict[str, Any]], verdicts: tuple[str, ...]) -> str:
    """The known cause of an op's flags: CAUSES, else what the verdicts themselves say."""
    if op in CAUSES:
        return CAUSES[op]
    said = {r[m]["verdict"] for r in hits for m in _modes(r, verdicts)}
    if said <= {"timeout"}:
        return "over the time cap on the shared machine"
    return "?"


def _refusal_reason(detail: str) -> str:
    text = detail.removeprefix("UsageError: ")
    if " is empty (shape" in text:
        return "an input is empty"
    if "complex" in text:
        return "complex output or input"
    if "no non-empty floating-point output" in text:
        return "empty or non-float output"
    if "inf" in text or "nan" in text.lower():
        return "non-finite input"
    return _cell(text, 120)


def torch_only(rows: list[dict[str, Any]]) -> list[str]:
    """torch does not pass: what gradcheck said, and whether torch's suite expects it."""
    flagged = [r for r in rows if r["torch"]["verdict"] != "pass"]
    out = [
        "",
        f"### torch's slow check does not pass ({len(flagged)} samples)",
        "",
        "suite: the skip/xfail PyTorch's own test_fn_grad / test_forward_mode_AD declares for"
        " this op (cpu, float64); torch's forward-mode check is off where the suite skips or"
        " xfails it.",
        "",
        "| op | samples | torch (first sample) | gc full: verdicts (evidence of the first) |"
        " gc fast | suite | judgement |",
        "|---|---|---|---|---|---|---|",
    ]
    by_op: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in flagged:
        by_op[r["op"]].append(r)
    for op, hits in sorted(by_op.items()):
        t, first = hits[0]["torch"], hits[0]
        full = Counter(r["full"]["verdict"] for r in hits)
        fast = Counter(r["fast"]["verdict"] for r in hits)
        out.append(
            f"| {op} | {', '.join(str(r['index']) for r in hits)} |"
            f" {_cell(t['verdict'] + ': ' + t.get('detail', ''), 160)} |"
            f" {', '.join(f'{v} {k}' for k, v in full.items())}: {_evidence(first, 'full')} |"
            f" {', '.join(f'{v} {k}' for k, v in fast.items())} | {first.get('suite') or ''} |"
            f" {_cell(TORCH_FAILS.get(op, _timeouts(hits)), 600)} |"
        )
    return out


def _timeouts(hits: list[dict[str, Any]]) -> str:
    if all(r["torch"]["verdict"] == "timeout" for r in hits):
        return "torch over the time cap on the shared machine"
    return "not judged yet"


def _finished(r: dict[str, Any]) -> bool:
    """All three checkers ran to a verdict (no refusal, crash or timeout): comparable times."""
    return r["torch"]["verdict"] in ("pass", "fail") and r["full"]["verdict"] in GC_VERDICTS[:6]


def times(rows: list[dict[str, Any]]) -> list[str]:
    timed = [r for r in rows if _finished(r) and r["fast"]["verdict"] in GC_VERDICTS[:6]]
    if not timed:
        return ["", "## Times", "", "No sample finished in all three checkers."]
    total = {c: sum(r[c]["seconds"] for r in timed) for c in ("torch", "full", "fast")}
    out = [
        "",
        "## Times",
        "",
        f"Over the {len(timed)} samples that all three checkers finished with a verdict"
        " (refusals, errors, timeouts left out), wall time, 1 torch thread, on a shared"
        " 2-core machine (other sessions were running: compare ratios, measured side by side):",
        "",
        "| | torch slow | gc full | gc fast |",
        "|---|---:|---:|---:|",
        f"| total | {total['torch']:.1f} s | {total['full']:.1f} s"
        f" ({total['full'] / total['torch']:.2f}x) | {total['fast']:.1f} s"
        f" ({total['fast'] / total['torch']:.2f}x) |",
    ]
    out += [
        "",
        "Median per sample by input size n (real input coordinates); ratio = median over"
        " samples of gc time / torch time:",
        "",
        "| n | samples | torch slow (ms) | gc full (ms) | gc fast (ms) | full / torch |"
        " fast / torch | gc full evaluations per coordinate |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, lo, hi in BUCKETS:
        group = [r for r in timed if r["n"] >= lo and (hi == 0 or r["n"] < hi)]
        if not group:
            continue

        def med(values: list[float]) -> float:
            return statistics.median(values)

        t = [r["torch"]["seconds"] for r in group]
        full = [r["full"]["seconds"] for r in group]
        fast = [r["fast"]["seconds"] for r in group]
        per = [r["full"].get("evaluations", 0) / max(r["n"], 1) for r in group]
        out.append(
            f"| {label} | {len(group)} | {_ms(med(t))} | {_ms(med(full))} | {_ms(med(fast))} |"
            f" {med([a / max(b, 1e-9) for a, b in zip(full, t, strict=True)]):.2f}x |"
            f" {med([a / max(b, 1e-9) for a, b in zip(fast, t, strict=True)]):.2f}x |"
            f" {med(per):.1f} |"
        )
    out += ["", "Slowest samples (gc full):", "", "| sample | n | torch slow | gc full | gc fast |"]
    out.append("|---|---:|---:|---:|---:|")
    for r in sorted(rows, key=lambda r: -r["full"].get("seconds", 0))[:15]:
        out.append(
            f"| {_key(r)} | {r.get('n')} | {r['torch'].get('seconds', 0):.2f} s |"
            f" {r['full'].get('seconds', 0):.2f} s ({r['full']['verdict']}) |"
            f" {r['fast'].get('seconds', 0):.2f} s |"
        )
    counted = [r for r in timed if r["full"].get("evaluations") and r["n"]]
    if counted:
        per = sorted(counted, key=lambda r: -r["full"]["evaluations"] / r["n"])
        values = [r["full"]["evaluations"] / r["n"] for r in counted]
        out += [
            "",
            f"gc full evaluations per input coordinate (`report.evaluations` / n, {len(counted)}"
            f" samples): median {statistics.median(values):.1f}, mean"
            f" {statistics.fmean(values):.1f}; the highest:",
            "",
            "| sample | n | evaluations | per coordinate | verdict |",
            "|---|---:|---:|---:|---|",
        ]
        for r in per[:15]:
            ev = r["full"]["evaluations"]
            out.append(
                f"| {_key(r)} | {r['n']} | {ev} | {ev / r['n']:.1f} | {r['full']['verdict']} |"
            )
    return out


def render_report(paths: list[Path], md: Path, quick: bool) -> None:
    """Read every record of `paths` (the last line per sample wins) and write the report."""
    from opinfo import read_records

    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for r in read_records(paths):
        latest[r["op"], r["index"]] = r
    rows = sorted(
        (r for r in latest.values() if r["index"] >= 0), key=lambda r: (r["op"], r["index"])
    )
    counts = {op: r["samples"] for (op, i), r in latest.items() if i == -2}
    failed = [r for r in latest.values() if r["index"] == -1]
    commits = Counter(r.get("commit", "?") for r in rows)
    versions = {r.get("torch_version") for r in rows} - {None}
    ops = {r["op"] for r in rows}
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    expected = sum(counts.values())
    coverage = f"{len(rows)} samples of {len(ops)} ops"
    if expected and not quick:
        coverage += f" (of {expected} samples in the {len(counts)} ops whose samples were counted)"
    lines = [
        "# PyTorch's operator database: gc.check vs torch.autograd.gradcheck",
        "",
        f"Generated by `benchmarks/opinfo.py`{' --quick' if quick else ''} on {date}:"
        f" {platform.machine()}, {os.cpu_count()} CPU cores (shared with other sessions),"
        f" torch {', '.join(sorted(versions))}, Python {platform.python_version()}, 1 torch"
        " thread. gradcheck commit(s): "
        + ", ".join(f"`{c}` ({n} samples)" for c, n in commits.most_common())
        + f". Coverage: {coverage}.",
        "",
        "Each float64 sample of every op in `op_db` that supports autograd in float64 on CPU is"
        " built as PyTorch's `TestGradients._check_helper` builds it (tensors that require grad"
        " as varargs, TensorLists flattened, `op.gradcheck_wrapper`,"
        " `sample.output_process_fn_grad`, samples seeded with torch's test SEED 1234) and"
        " checked by `torch.autograd.gradcheck` in slow mode with the suite's options"
        " (`check_batched_grad=op.check_batched_grad`, `check_grad_dtypes=True`,"
        " `nondet_tol=op.gradcheck_nondet_tol`, `check_undefined_grad=True`, and"
        " `check_forward_ad=op.supports_forward_ad` unless the suite skips or xfails the op's"
        ' forward-mode test), by `gc.check(fn, *tensors, mode="full")` and by'
        ' `mode="fast"`; each check on its own clone of the sample, under a time cap.',
        "",
        "gc verdicts besides the report's own: `refused` = gc.check raised UsageError,"
        " `raised` = any other exception. torch: `fail` = GradcheckError, `error` = any other"
        " exception.",
    ]
    if failed:
        lines += ["", "Ops whose samples could not be generated: "]
        lines += [f"- {r['op']}: {_cell(r.get('error', ''))}" for r in failed]
    lines += ["", "## Agreement", "", *matrix(rows, "full"), "", *matrix(rows, "fast"), ""]
    lines += disagreement_lists(rows)
    lines += torch_only(rows)
    lines += times(rows)
    write_atomically(md, "\n".join(lines) + "\n")
