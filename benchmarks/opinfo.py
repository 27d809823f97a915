"""gc.check against torch.autograd.gradcheck on every float64 sample of PyTorch's op database.

Every op of `torch.testing._internal.common_methods_invocations.op_db` that supports autograd
in float64 on CPU contributes its samples, built exactly as PyTorch's `TestGradients` builds
them (see `_opinfo_checks`). Each sample is checked by `torch.autograd.gradcheck` in slow mode
with the suite's options (nondet_tol, batched grad, undefined grad, forward mode where the
suite tests it), by `gc.check(mode="full")` and by `gc.check(mode="fast")`, one torch thread.
Results go to a JSON-lines file as they come (one line per sample; a re-run skips samples
already there), and the Markdown report (`_opinfo_report`) is rendered from those lines.

`--engine HEAD` measures the committed engine (a snapshot of gradcheck/ at that commit) rather
than the work tree, which other sessions may be editing; every record names its commit.

Time caps: each check gets `--timeout` seconds (a SIGALRM timer, recorded as "timeout"). The
checks run in a worker process watched by this one: a worker that overruns a check by more
than the cap (stuck in one C++ call) or dies (a segfault) is killed or restarted, the sample
is recorded with "timeout"/"crashed" for the checker that was running, and the sweep goes on.

Run from the repository root:
    .venv/bin/python benchmarks/opinfo.py --quick          # ~25 representative samples
    .venv/bin/python benchmarks/opinfo.py                  # every sample (tens of minutes)
    .venv/bin/python benchmarks/opinfo.py --shard 0/2 &    # the same in two processes, then
    .venv/bin/python benchmarks/opinfo.py --shard 1/2 &    # ... and, when both are done:
    .venv/bin/python benchmarks/opinfo.py --report-only --merge  # opinfo.jsonl.gz, opinfo.md
`--ops abs,sum,'linalg.*'` (fnmatch patterns on `name` or `name.variant`) and `--max-samples`
narrow the sweep; `--tiny` is the smoke test's configuration.
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPORTS, engine_snapshot, git_commit

OUT = REPORTS / "opinfo.jsonl"
QUICK_OUT = REPORTS / "opinfo-quick.jsonl"

# The quick configuration: a fixed, representative subset (op -> sample indices): smooth
# elementwise and reductions, linear algebra, convolutions, step functions, kinks, outputs
# without grad, ops with known torch defects, complex outputs, empty outputs, -inf inputs.
QUICK: dict[str, tuple[int, ...]] = {
    "abs": (0, 1),
    "sum": (0,),
    "tanh": (0,),
    "sigmoid": (0,),
    "nn.functional.hardsigmoid": (0,),
    "logcumsumexp": (0, 1),
    "polygamma.polygamma_n_1": (0,),
    "floor": (0,),
    "round": (0,),
    "amax": (0, 1),
    "nn.functional.relu": (0,),
    "native_batch_norm": (0,),
    "scatter_reduce.prod": (0,),
    "linalg.cholesky": (0,),
    "linalg.det": (0,),
    "matmul": (0,),
    "nn.functional.conv2d": (0,),
    "cumprod": (0,),
    "std": (0,),
    "nn.functional.pdist": (0,),
    "repeat": (0,),
    "fft.fft": (0,),
    "torch.ops.aten._safe_softmax.default": (0,),
    "index_add": (0,),
    "where": (0,),
}
TINY: dict[str, tuple[int, ...]] = {"abs": (0,), "sum": (0,)}


def selected(op_name: str, patterns: list[str] | None) -> bool:
    return patterns is None or any(fnmatch.fnmatchcase(op_name, p) for p in patterns)


def read_records(paths: list[Path]) -> list[dict[str, Any]]:
    """Every complete JSON line of `paths`, gzipped or not (a line cut by a kill is skipped)."""
    records = []
    for path in paths:
        if not path.exists():
            continue
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                text = handle.read()
        else:
            text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, default=str) + "\n")


# --- the worker: runs the checks ---------------------------------------------------------------


def work(args: argparse.Namespace, out: Path, heartbeat: Path, recorded: list[Path]) -> None:
    """Check every selected sample not yet in `recorded` (this shard's file and every other
    shard's, so that a sweep can be re-sharded midway), with a heartbeat before each check."""
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    from _opinfo_checks import autograd_ops, check_sample, full_name, samples, time_cap

    commit, version = git_commit(), torch.__version__
    done = {(r["op"], r["index"]) for r in read_records(recorded)}
    subset = QUICK if args.quick else TINY if args.tiny else None
    ops = [
        op
        for op in autograd_ops()
        if (subset is None or full_name(op) in subset) and selected(full_name(op), args.ops)
    ]
    shard, shards = args.shard
    for position, op in enumerate(ops):
        name = full_name(op)
        if position % shards != shard or (name, -1) in done:
            continue

        def beat(index: int, checker: str, partial: dict[str, Any], name: str = name) -> None:
            state = {"op": name, "index": index, "checker": checker, "since": time.time()}
            state["commit"] = commit
            heartbeat.write_text(json.dumps({**state, "record": partial}, default=str))

        beat(-1, "samples", {})
        try:
            with time_cap(args.timeout):
                found = samples(op)
        except BaseException as e:  # a generation failure is recorded, not fatal
            append(out, {"op": name, "index": -1, "error": f"{type(e).__name__}: {e}"[:300]})
            continue
        if (name, -2) not in done:  # how many samples the op has, for the report's coverage
            append(out, {"op": name, "index": -2, "samples": len(found)})
        indices = subset[name] if subset else range(len(found))
        for index in indices:
            if index >= len(found) or (args.max_samples and index >= args.max_samples):
                continue
            if (name, index) in done:
                continue
            partial: dict[str, Any] = {"op": name, "index": index}

            def started(
                checker: str, index: int = index, partial: dict[str, Any] = partial
            ) -> None:
                beat(index, checker, partial)

            record = check_sample(op, found[index], args.timeout, started, partial, args.max_n)
            append(out, {**record, "commit": commit, "torch_version": version})
            print(
                f"{name}[{index}] n={record.get('n')} "
                + " ".join(f"{c}={record[c]['verdict']}" for c in ("torch", "full", "fast")),
                flush=True,
            )
    heartbeat.unlink(missing_ok=True)


# --- the supervisor: restarts a worker that hangs or dies ----------------------------------


def worker_command(argv: list[str]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", *argv]


def supervise(argv: list[str], args: argparse.Namespace, out: Path, heartbeat: Path) -> None:
    """Run workers until one finishes cleanly; record the check a dead or stuck one was in."""
    hard_limit = 2 * args.timeout + 60  # the alarm fires only between Python bytecodes
    for _attempt in range(200):
        heartbeat.unlink(missing_ok=True)
        env = dict(os.environ)
        if args.engine:  # the worker imports gradcheck from a snapshot of that commit
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, (str(engine_snapshot(args.engine)), env.get("PYTHONPATH")))
            )
        proc = subprocess.Popen(worker_command(argv), env=env)
        killed = False
        try:
            while proc.poll() is None:
                time.sleep(1.0)
                beat = _read_heartbeat(heartbeat)
                if beat and time.time() - beat["since"] > hard_limit:
                    proc.kill()  # our own worker, by its pid
                    proc.wait()
                    killed = True
        finally:
            if proc.poll() is None:  # the supervisor itself was interrupted
                proc.kill()
                proc.wait()
        if proc.returncode == 0 and not killed:
            return
        beat = _read_heartbeat(heartbeat)
        if beat is None:
            print(f"worker exited with {proc.returncode} before any check", file=sys.stderr)
            return
        done = {(r["op"], r["index"]) for r in read_records([out])}
        if (beat["op"], beat["index"]) in done:
            continue
        what = "timeout" if killed else "crashed"
        detail = f"worker {'killed after' if killed else 'died'}"
        detail += f" {hard_limit:g} s" if killed else f" (exit code {proc.returncode})"
        if beat["checker"] == "samples":
            append(out, {"op": beat["op"], "index": -1, "error": f"{what}: {detail}"})
            continue
        record = dict(beat["record"])
        from _opinfo_checks import CHECKERS

        reached = False
        for checker in CHECKERS:
            if checker == beat["checker"]:
                record[checker] = {"verdict": what, "detail": detail, "seconds": hard_limit}
                reached = True
            elif reached or checker not in record:
                record[checker] = {"verdict": "not run", "detail": f"after a {what}"}
        append(out, {**record, "commit": beat.get("commit", "")})
        print(f"{beat['op']}[{beat['index']}] {beat['checker']}: {what}", flush=True)


def _read_heartbeat(path: Path) -> dict[str, Any] | None:
    try:
        beat: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return beat


# --- command line ------------------------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    i, n = (int(v) for v in text.split("/"))
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"shard must be i/n with 0 <= i < n, got {text}")
    return i, n


def shard_path(out: Path, shard: tuple[int, int]) -> Path:
    i, n = shard
    return out if n == 1 else out.with_name(f"{out.stem}.shard{i}of{n}{out.suffix}")


def shard_files(out: Path) -> list[Path]:
    """`out`, its merged archive and every shard file written beside it."""
    shards = out.parent.glob(f"{out.stem}.shard*of*{out.suffix}")
    return sorted({out, archive_path(out), *shards})


def archive_path(base: Path) -> Path:
    return base.with_name(base.name + ".gz")


def merge(base: Path) -> None:
    """Fold `base` and its shards into one gzipped file (the latest line per sample, sorted by
    op and sample; ~10x smaller, for committing) and remove the plain files."""
    latest = {(r["op"], r["index"]): r for r in read_records(shard_files(base))}
    lines = [json.dumps(latest[k], default=str) for k in sorted(latest)]
    data = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0)
    archive = archive_path(base)
    tmp = archive.with_name(f".{archive.name}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, archive)
    for path in shard_files(base):
        if path != archive and path.exists():
            path.unlink()


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--ops", type=lambda s: s.split(","), help="fnmatch patterns, comma-separated"
    )
    parser.add_argument("--max-samples", type=int, default=0, help="samples per op (0: all)")
    parser.add_argument("--shard", type=parse_shard, default=(0, 1), help="i/n: every n-th op")
    parser.add_argument("--quick", action="store_true", help="the fixed representative subset")
    parser.add_argument("--tiny", action="store_true", help="two samples: the smoke test")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per check")
    parser.add_argument(
        "--max-n",
        type=int,
        default=0,
        help="samples with more inputs get gc fast only (0: no limit)",
    )
    parser.add_argument("--out", type=Path, help="JSON lines (default reports/benchmarks/...)")
    parser.add_argument("--md", type=Path, help="the Markdown report (default beside --out)")
    parser.add_argument(
        "--engine",
        metavar="REV",
        help="measure gradcheck as committed at REV (e.g. HEAD), not the work tree",
    )
    parser.add_argument("--report-only", action="store_true", help="render the report only")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="fold the shard files into --out (one line per sample, the latest) and delete them",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser


def _exit_on_term(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = arguments().parse_args(argv)
    base = args.out or (QUICK_OUT if args.quick or args.tiny else OUT)
    out = shard_path(base, args.shard)
    heartbeat = out.with_name(f".{out.name}.current")
    if args.worker:
        work(args, out, heartbeat, shard_files(base))
        return 0
    if not args.report_only:
        signal.signal(signal.SIGTERM, _exit_on_term)  # so that `finally` stops the worker
        out.parent.mkdir(parents=True, exist_ok=True)
        supervise([a for a in argv if a != "--report-only"], args, out, heartbeat)
    if args.merge:
        merge(base)
    from _opinfo_report import render_report

    md = args.md or base.with_suffix(".md")
    render_report(shard_files(base), md, quick=args.quick or args.tiny)
    print(f"wrote {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
