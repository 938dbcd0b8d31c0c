"""What SQLite ``synchronous=FULL`` (every commit fsynced: an acknowledged write survives a power
cut) costs against ``NORMAL``, side by side in one run, modes interleaved, medians over repeats:

1. ingest: synthetic MovieLens-shaped interactions from CSV into a fresh SQLite file (one
   transaction, so one fsync more or less: the cost should be small);
2. events: ``POST /api/events`` (one commit each) against `avrec serve` in its own process
   (a small synthetic content model), driven by `wrk` with 1 and 4 connections; requests/s from
   wrk, p50/p99 from the server's own timings. Writes the "durability" section of
   docs/benchmarks.md.

    .venv/bin/python -m benchmarks.bench_durability [--rows 200000] [--repeats 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from benchmarks._report import write_section
from benchmarks.bench_ingest import make_dataset, run_avrec
from benchmarks.bench_service import MIXED_LUA, Server, free_port, latency, wrk
from benchmarks.synthetic_catalog import item_vectors, save_content_model

MODES = ("NORMAL", "FULL")
VAR = "AVREC_SQLITE_SYNCHRONOUS"
ITEMS, USERS = 2_000, 1_000


def ingest_runs(work: Path, rows: int, repeats: int) -> dict[str, list[dict]]:
    make_dataset(work / "data", rows)
    out: dict[str, list[dict]] = {m: [] for m in MODES}
    for r in range(repeats):
        for mode in MODES:
            os.environ[VAR] = mode  # read by each new SQLite connection
            out[mode].append(
                run_avrec(work / "data", f"sqlite:///{work / f'ingest-{mode}-{r}.db'}")
            )
            print("ingest", mode, out[mode][-1], flush=True)
    os.environ.pop(VAR)
    return out


def event_run(work: Path, model_dir: Path, mode: str, n: int, seconds: int) -> dict:
    from avrec.storage.db import make_engine, upgrade
    from avrec.storage.keys import create_key

    url = f"sqlite:///{work / f'events-{mode}-{n}.db'}"
    engine = make_engine(url)
    upgrade(engine)
    write, admin = create_key(engine, "bench", ["write"]), create_key(engine, "admin", ["admin"])
    engine.dispose()
    server = Server(model_dir, url, free_port(), work / "server.log", nprobe=None)
    os.environ[VAR] = mode  # inherited by the server process
    server.start()
    out = {}
    try:
        for conns in (1, 4):
            tag = f"{mode}{n}c{conns}"
            (work / tag).mkdir()
            lua = MIXED_LUA % {
                "seed": n,
                "users": USERS,
                "items": ITEMS,
                "write_share": 1.0,
                "tag": tag,
                "key": write,
                "ackdir": work / tag,
            }
            wrk(server.base, lua, 1, conns, work)  # warm-up
            latency(server.base, admin)
            res = wrk(server.base, lua, seconds, conns, work)
            server_lat = latency(server.base, admin)["POST /api/events"]
            out[conns] = {
                "rps": res["rps"],
                "p50": server_lat["p50_ms"],
                "p99": server_lat["p99_ms"],
                "errors": res.get("s5xx", 0),
            }
    finally:
        server.stop()
        os.environ.pop(VAR)
    print("events", mode, out, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="avrec-bench-durability-") as tmp:
        work = Path(tmp)
        ingest = ingest_runs(work, args.rows, args.repeats)
        vectors, cluster = item_vectors(ITEMS)
        save_content_model(work / "model", vectors, cluster, users=USERS)
        events: dict[str, list[dict]] = {m: [] for m in MODES}
        for r in range(args.repeats):
            for mode in MODES:
                events[mode].append(event_run(work, work / "model", mode, r, args.seconds))
    load_after = os.getloadavg()[0]
    med = statistics.median
    lines = [
        (
            f"SQLite `synchronous` NORMAL (before) vs FULL (now the default): the same work in "
            f"one run, modes interleaved, median of {args.repeats} repeats; database files on "
            f"the machine's disk (/tmp). Ingest: {args.rows:,} synthetic interactions from CSV, "
            f"one transaction, fresh file each run. Events: `POST /api/events` with a write key, "
            f"one commit each, `avrec serve` in its own process (a {ITEMS:,}-item content model), "
            f"`wrk` for {args.seconds} s per row; p50/p99 are the server's own timings of the "
            f"request. Load average {load:.1f} before, {load_after:.1f} after (a shared machine: "
            f"figures vary between runs; the side-by-side ratio is the point).\n"
        ),
        (
            "| synchronous | ingest write (s) | ingest total (s) | events/s, 1 connection "
            "| event p50 / p99, 1 conn. (ms) | events/s, 4 connections "
            "| event p50 / p99, 4 conn. (ms) | 5xx |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode in MODES:
        ing, ev = ingest[mode], events[mode]

        def m(conns: int, key: str, runs=ev) -> float:
            return med(r[conns][key] for r in runs)

        errors = sum(r[c]["errors"] for r in ev for c in (1, 4))
        lines.append(
            f"| {mode} | {med(r['write'] for r in ing):.2f} | "
            f"{med(r['total'] for r in ing):.2f} | {m(1, 'rps'):.0f} | "
            f"{m(1, 'p50'):.2f} / {m(1, 'p99'):.2f} | {m(4, 'rps'):.0f} | "
            f"{m(4, 'p50'):.2f} / {m(4, 'p99'):.2f} | {errors} |"
        )
    body = "\n".join(lines)
    print(body)
    write_section(
        "durability",
        "Durability: SQLite synchronous=FULL vs NORMAL",
        body,
        "benchmarks/bench_durability.py",
    )


if __name__ == "__main__":
    main()
