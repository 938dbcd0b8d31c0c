"""Benchmark: ingest 1,000,000 synthetic MovieLens-shaped interactions (validate + load) into
SQLite and PostgreSQL; pandas ``to_sql`` side by side as the baseline; ``avrec --help`` start-up.

    python benchmarks/bench_ingest.py [--rows 1000000] [--repeats 3] [--postgres-url URL]

Without --postgres-url, ``scripts/postgres.sh start`` provides one.

``--stream`` measures the streamed path instead (:mod:`benchmarks.bench_stream`): peak memory
and time of reading a synthetic interactions file (CSV and Parquet, 20M rows by default) into
the training matrices, in chunks and, where it fits, whole.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._report import write_section


def make_dataset(root: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items = max(rows // 150, 10), max(rows // 250, 10)
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "item_id": np.arange(1, n_items + 1),
            "title": [f"Movie {i} (1999)" for i in range(n_items)],
            "genres": "Drama|Comedy",
            "kind": "movie",
            "year": 1999,
        }
    ).to_csv(root / "items.csv", index=False)
    pairs = rng.choice(n_users * n_items, size=rows, replace=False)
    pd.DataFrame(
        {
            "user_id": pairs // n_items + 1,
            "item_id": pairs % n_items + 1,
            "rating": rng.integers(1, 11, rows) / 2,
            "timestamp": rng.integers(9e8, 1.5e9, rows),
        }
    ).to_csv(root / "interactions.csv", index=False)


def fresh_url(kind: str, tmp: Path, pg_base: str, n: int) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'bench{n}.db'}"
    import psycopg

    name = f"avrec_bench_{n}_{int(time.time())}"
    with psycopg.connect(pg_base.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return pg_base.rsplit("/", 1)[0] + "/" + name


def run_avrec(root: Path, url: str) -> dict[str, float]:
    from avrec.data.loaders import load_dataset
    from avrec.storage.db import make_engine, upgrade
    from avrec.storage.ingest import ingest, table_counts

    engine = make_engine(url)
    upgrade(engine)
    t0 = time.perf_counter()
    ds = load_dataset(root)
    t1 = time.perf_counter()
    ingest(ds, engine)
    t2 = time.perf_counter()
    assert table_counts(engine)["interactions"] == ds.n_interactions
    engine.dispose()
    return {"load_validate": t1 - t0, "write": t2 - t1, "total": t2 - t0}


def run_baseline(root: Path, url: str) -> float:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    t0 = time.perf_counter()
    frame = pd.read_csv(root / "interactions.csv")
    frame.to_sql(
        "plain_interactions",
        engine,
        index=False,
        chunksize=10_000,
        method="multi" if url.startswith("postgresql") else None,
    )
    engine.dispose()
    return time.perf_counter() - t0


def main() -> None:
    if "--stream" in sys.argv:
        from benchmarks.bench_stream import main as stream_main

        sys.argv.remove("--stream")
        stream_main()
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--postgres-url")
    args = ap.parse_args()
    pg = (
        args.postgres_url
        or subprocess.check_output(
            ["bash", str(Path(__file__).parents[1] / "scripts" / "postgres.sh"), "start"], text=True
        ).strip()
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        make_dataset(tmp / "data", args.rows)
        n = 0
        for kind in ("sqlite", "postgresql"):
            runs = []
            for _ in range(args.repeats):
                n += 1
                runs.append(run_avrec(tmp / "data", fresh_url(kind, tmp, pg, n)))
            n += 1
            base = run_baseline(tmp / "data", fresh_url(kind, tmp, pg, n))
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            rows.append((kind, med, base))
            print(kind, med, "baseline", base, flush=True)
    help_times = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "avrec"), "--help"], check=True, capture_output=True
        )
        help_times.append(time.perf_counter() - t0)
    body = [
        (
            f"{args.rows:,} synthetic interactions "
            "(MovieLens shape: user, item, rating, timestamp) "
            f"plus their catalog, from CSV: read + validate, then one transaction. Median of "
            f"{args.repeats} runs, fresh database each run. Target: total ≤ 15 s on each backend. "
            "avrec's write is an idempotent upsert into the indexed schema (unique natural key); "
            "the baseline appends the same rows to a bare table with no keys and no validation "
            "(pandas `to_sql`, `method='multi'` on PostgreSQL), so it does strictly less work.\n"
        ),
        "| backend | read + validate (s) | write (s) | total (s) "
        "| pandas `to_sql` baseline, write only (s) | baseline / avrec total |",
        "|---|---|---|---|---|---|",
    ]
    for kind, med, base in rows:
        body.append(
            f"| {kind} | {med['load_validate']:.2f} | {med['write']:.2f} | "
            f"**{med['total']:.2f}** | {base:.2f} | {base / med['total']:.1f}× |"
        )
    body.append(
        f"\n`avrec --help` start-up: median {statistics.median(help_times) * 1000:.0f} ms "
        "over 5 runs."
    )
    write_section("ingest", "Ingest (foundation)", "\n".join(body), "benchmarks/bench_ingest.py")


if __name__ == "__main__":
    main()
