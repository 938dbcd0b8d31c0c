"""Benchmark: peak memory and time of reading a synthetic interactions file into the training
matrices, streamed in chunks (:func:`avrec.data.stream.stream_folder`) and, at a size where it
fits, whole (``load_dataset`` + ``TrainData.from_dataset``, the in-memory path). CSV and
Parquet. Each measurement runs in its own process; its peak RSS is that process's
``ru_maxrss``. The files are written to a temporary folder and removed (``--data``: kept).

    python benchmarks/bench_ingest.py --stream [--rows 20000000] [--whole-rows 2000000]
        [--chunk-rows 500000,100000] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._report import write_section

BLOCK = 1_000_000


def generate(root: Path, rows: int, seed: int = 0) -> dict[str, Path]:
    """``root/csv`` and ``root/parquet``: the same catalog and ``rows`` interactions (users
    uniform, items with a popularity long tail, ratings, timestamps, some repeated pairs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_users, n_items = max(rows // 40, 10), max(rows // 200, 100)
    folders = {kind: root / kind for kind in ("csv", "parquet")}
    items = pd.DataFrame(
        {
            "item_id": [f"i{n:07d}" for n in range(n_items)],
            "title": [f"Item {n}" for n in range(n_items)],
            "genres": "Drama|Comedy",
        }
    )
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("interactions.*"):  # a partly written earlier run
            old.unlink()
        items.to_csv(folder / "items.csv", index=False)
    writer = None
    for start in range(0, rows, BLOCK):
        n = min(BLOCK, rows - start)
        block = pd.DataFrame(
            {
                "user_id": [f"u{u}" for u in rng.integers(0, n_users, n)],
                "item_id": items["item_id"].to_numpy()[
                    (n_items * rng.random(n) ** 3).astype(np.int64)
                ],
                "rating": rng.integers(1, 11, n) / 2,
                "timestamp": rng.integers(1_000_000_000, 1_700_000_000, n),
            }
        )
        block.to_csv(folders["csv"] / "interactions.csv", mode="a", header=start == 0, index=False)
        table = pa.Table.from_pandas(block, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(folders["parquet"] / "interactions.parquet", table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()
    return folders


def child(folder: str, mode: str, chunk_rows: int) -> None:
    """One measurement, in this process: prints its seconds, peak RSS and the matrix size."""
    from avrec.data.loaders import load_dataset
    from avrec.data.stream import stream_folder
    from avrec.models.base import TrainData

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if mode == "stream":
        _, streamed = stream_folder(Path(folder), chunk_rows=chunk_rows)
        nnz, users = streamed.matrices.matrix.nnz, len(streamed.user_vocab)
    else:
        data = TrainData.from_dataset(load_dataset(folder))
        nnz, users = data.matrix.nnz, data.n_users
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_gib": peak / 1024**2,
                "imports_gib": before / 1024**2,
                "nnz": nnz,
                "users": users,
            }
        )
    )


def measure(folder: Path, mode: str, chunk_rows: int) -> dict:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from benchmarks.bench_stream import child; "
        "child(sys.argv[2], sys.argv[3], int(sys.argv[4]))"
    )
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", code, root, str(folder), mode, str(chunk_rows)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from avrec.settings import DEFAULT_CHUNK_ROWS

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--whole-rows", type=int, default=2_000_000)
    ap.add_argument("--chunk-rows", default=f"{DEFAULT_CHUNK_ROWS}")
    ap.add_argument(
        "--from-log",
        type=Path,
        help="write the section from the result lines an earlier run printed (no new runs)",
    )
    ap.add_argument(
        "--data",
        type=Path,
        help="keep the generated files in this folder (and reuse those already there)",
    )
    args = ap.parse_args()
    if args.from_log:
        import ast

        lines = args.from_log.read_text().splitlines()
        done = [ast.literal_eval(line) for line in lines if line.startswith("{")]
        _write(done, args)
        return
    chunks = [int(c) for c in args.chunk_rows.split(",")]
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        base = args.data or Path(tmp_name)
        for rows in sorted({args.whole_rows, args.rows}, reverse=True):  # the large file first
            t0 = time.perf_counter()
            folders = {kind: base / str(rows) / kind for kind in ("csv", "parquet")}
            if not all((f / "items.csv").is_file() for f in folders.values()):
                folders = generate(base / str(rows), rows)
                print(f"{rows:,} rows generated in {time.perf_counter() - t0:.0f} s", flush=True)
            sizes = {
                kind: sum(f.stat().st_size for f in folder.iterdir()) / 1024**2
                for kind, folder in folders.items()
            }
            for kind, folder in folders.items():
                runs = [("stream", c) for c in chunks]
                if rows <= args.whole_rows:
                    runs.append(("whole", 0))
                for mode, chunk in runs:
                    r = measure(folder, mode, chunk)
                    row = {"rows": rows, "format": kind, "mode": mode, "chunk": chunk}
                    results.append({**row, "mib": sizes[kind], **r})
                    print(results[-1], flush=True)
                    _write(results, args)  # after each run: a stopped run keeps what it measured


def _write(results: list[dict], args) -> None:
    write_section(
        "ingest-stream",
        "Streamed interactions (bounded-memory ingest)",
        _body(results, args),
        "benchmarks/bench_ingest.py --stream",
    )


def _body(results: list[dict], args) -> str:
    lines = [
        "Reading a synthetic interactions file (user, item, rating, timestamp; items with a "
        "popularity long tail, 40 interactions per user on average, some pairs repeated) and "
        "its catalog (rows / 200 items) into the training matrices (users x items weights, "
        "last ratings, recency ranks). `stream`: `data.stream.stream_folder`, the interactions "
        "read, validated and coded `chunk` rows at a time (`AVREC_CHUNK_ROWS`); `whole`: the "
        "in-memory path (`load_dataset` + `TrainData.from_dataset`). One process per row; peak "
        "RSS is the process's `ru_maxrss` (the interpreter with numpy, pandas and pyarrow "
        "imported is 0.1-0.35 GiB of it). One run each; 1-minute load average when this was "
        f"written: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other jobs shared the "
        "machine, so times are upper bounds; peak memory does not depend on them).\n",
        "| rows | format | file (MiB) | path | chunk rows | time (s) | peak RSS (GiB) | pairs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        chunk = f"{r['chunk']:,}" if r["mode"] == "stream" else "-"
        lines.append(
            f"| {r['rows']:,} | {r['format']} | {r['mib']:.0f} | {r['mode']} | {chunk} | "
            f"{r['seconds']:.1f} | **{r['peak_gib']:.2f}** | {r['nnz']:,} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
