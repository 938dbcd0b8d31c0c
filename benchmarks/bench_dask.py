"""Benchmark: ``avrec evaluate`` as Dask tasks on a LocalCluster of 1 and of 2 worker processes.

3 seeds x 3 models (with the baselines every report carries) on ml-100k ``msr``; the same
evaluation (``evaluation.api.evaluate_to_report``, as ``avrec evaluate`` runs it, cluster start
included) runs on a 2-worker and on a 1-worker LocalCluster, alternating, ``--repeats`` times each;
reports the median wall time, the speedup, and whether the two runs' ``results.json`` and
``per_user.csv`` are byte-identical (and equal to an in-process run with one BLAS thread).

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/bench_dask.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._report import write_section

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ready"
OUT = ROOT / "reports" / "benchmarks" / "dask"
FILES = ("results.json", "per_user.csv")


def run(dataset, models, seeds, report: Path, workers: int | None) -> float:
    from avrec.cluster import LOCAL, dask_client
    from avrec.evaluation.api import evaluate_to_report

    t0 = time.perf_counter()
    with dask_client(LOCAL if workers else None, workers) as client:
        evaluate_to_report(
            dataset, "msr", models, [10, 20], seeds, report, log=lambda m: None, client=client
        )
    return time.perf_counter() - t0


def main() -> None:
    import numpy as np

    from avrec.data.loaders import load_dataset

    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--models", default="ease,vae,hybrid")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    dataset = load_dataset(DATA / args.dataset)
    models = args.models.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    times: dict[int, list[float]] = {1: [], 2: []}
    # in-process first: it also fills the encoder cache the cluster runs then read
    inproc = run(dataset, models, seeds, OUT / "in-process", None)
    for rep in range(args.repeats):
        for workers in (2, 1):
            seconds = run(dataset, models, seeds, OUT / f"workers-{workers}", workers)
            times[workers].append(seconds)
            print(f"repeat {rep}: {workers} worker(s) {seconds:.1f} s", flush=True)
    same = {
        f: (OUT / "workers-1" / f).read_bytes()
        == (OUT / "workers-2" / f).read_bytes()
        == (OUT / "in-process" / f).read_bytes()
        for f in FILES
    }
    one, two = float(np.median(times[1])), float(np.median(times[2]))
    load = os.getloadavg()[0]
    fitted = list(dict.fromkeys(["popularity", "itemknn", "ease", "als", *models]))
    names = ", ".join(models)
    body = f"""`avrec evaluate` ({args.dataset}, `msr`, seeds {seeds}, models {names} and the
report's baselines: {len(seeds)} x {len(fitted)} fits of {", ".join(fitted)})
through `evaluation.api.evaluate_to_report` with a `LocalCluster` of single-threaded worker
processes (`avrec evaluate --workers N`), the cluster's start included. Median of {args.repeats}
runs each, alternating; one BLAS/OpenMP thread everywhere. 1-minute load average after the runs:
{load:.1f} (2 cores).

| workers | wall (s), median | runs (s) |
|---|---|---|
| 1 | {one:.1f} | {", ".join(f"{t:.1f}" for t in times[1])} |
| 2 | {two:.1f} | {", ".join(f"{t:.1f}" for t in times[2])} |

Speedup of 2 workers over 1: **{one / two:.2f}x** (target >= 1.6x). In-process (no Dask, the
default): {inproc:.1f} s, one run, with the text encoding of the catalog (cached afterwards).

Byte-identical across in-process, 1 worker and 2 workers: """ + ", ".join(
        f"`{f}` {'yes' if ok else 'NO'}" for f, ok in same.items()
    )
    write_section(
        "dask", "Distributed evaluation (Dask LocalCluster)", body, "benchmarks/bench_dask.py"
    )
    print(body)


if __name__ == "__main__":
    main()
