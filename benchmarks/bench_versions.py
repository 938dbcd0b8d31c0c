"""Benchmark: this checkout against an earlier one, side by side in one run: `avrec train`
(the default model) on a dataset folder and `avrec recommend` of 1,000 requests, each version
timed in turn (alternating, so drift in the machine's load falls on both), medians; and whether
the two versions' recommendation files are identical. Regenerates the "versions" section of
docs/benchmarks.md.

    git worktree add /tmp/avrec-base <commit>
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_versions.py --base /tmp/avrec-base \\
        [--dataset ../shared/data/ready/ml-latest-small] [--repeats 3]

Each version runs the CLI with its own ``src`` first on ``PYTHONPATH``; both share one
``AVREC_HOME`` (``--home``, default a temporary folder), whose encoders' cache (keyed by the
text and the encoder's version) a warm-up training per version fills before timing, so neither
version's timings include encoding the catalog's texts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section
from bench_recommend import make_requests

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ready" / "ml-latest-small"


def run(src: Path, home: Path, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(src / "src"), "AVREC_HOME": str(home)}
    code = "import sys; from avrec.cli import main; sys.argv = ['avrec', *sys.argv[1:]]; main()"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, env=env)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, required=True, help="checkout of the earlier version")
    ap.add_argument("--dataset", type=Path, default=DATA)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--home", type=Path, default=None, help="AVREC_HOME shared by both")
    args = ap.parse_args()
    versions = {"base": args.base.resolve(), "this": ROOT}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        req = tmp / "requests.jsonl"
        req.write_text(
            "".join(json.dumps(r) + "\n" for r in make_requests(args.dataset, args.requests))
        )
        shared = args.home or tmp / "home"
        home = {name: shared for name in versions}
        for name, src in versions.items():  # warm-up: fills each version's encoder cache
            run(src, home[name], "train", str(args.dataset), "--out", str(tmp / f"m-{name}"))
        train = {name: [] for name in versions}
        recommend = {name: [] for name in versions}
        for _ in range(args.repeats):
            for name, src in versions.items():
                out = tmp / f"m-{name}"
                train[name].append(
                    run(src, home[name], "train", str(args.dataset), "--out", str(out))
                )
                recommend[name].append(
                    run(
                        src,
                        home[name],
                        "recommend",
                        str(out),
                        "--input",
                        str(req),
                        "--k",
                        "10",
                        "--output",
                        str(tmp / f"out-{name}.jsonl"),
                    )
                )
        same = (tmp / "out-base.jsonl").read_text() == (tmp / "out-this.jsonl").read_text()
    med = {
        k: {n: statistics.median(v[n]) for n in versions}
        for k, v in (("train", train), ("recommend", recommend))
    }
    rows = []
    for key, what in (
        ("train", f"`avrec train` ({args.dataset.name}, default model)"),
        ("recommend", f"`avrec recommend` ({args.requests:,} requests)"),
    ):
        base, this = med[key]["base"], med[key]["this"]
        rows.append(f"| {what} | {base:.1f} | {this:.1f} | {this / base:.2f} |")
    body = (
        f"Base: `{args.base}`; medians of {args.repeats} alternating repeats after one "
        "warm-up each (seconds, whole commands).\n\n"
        "| command | base (s) | this (s) | this / base |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\nThe two versions' recommendation files are "
        + ("identical." if same else "**different**.")
        + "\n"
    )
    print(body)
    write_section(
        "versions",
        "This version against an earlier one (train and recommend)",
        body,
        "benchmarks/bench_versions.py",
    )


if __name__ == "__main__":
    main()
