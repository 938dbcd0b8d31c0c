"""Vector index speed and recall@10 against exact search, on a synthetic 1,000,000-item catalog
of 384-d clustered unit vectors. Single-threaded (as in the server). Writes the "index"
section of docs/benchmarks.md.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.bench_index [--items 1000000]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from benchmarks._report import write_section
from benchmarks.synthetic_catalog import item_vectors


def per_query_ms(index, queries: np.ndarray, k: int = 10) -> tuple[float, float, np.ndarray]:
    """(median ms, p99 ms, ids) over one-at-a-time queries (how the server asks)."""
    times, ids = [], []
    for q in queries:
        start = time.perf_counter()
        idx, _ = index.search(q[None, :], k)
        times.append((time.perf_counter() - start) * 1000)
        ids.append(idx[0])
    return float(np.median(times)), float(np.percentile(times, 99)), np.array(ids)


def main() -> None:
    from threadpoolctl import threadpool_limits

    from avrec.index import make_index, recall_at_k

    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument(
        "--hnsw-items",
        type=int,
        default=200_000,
        help="HNSW is built on this many items (its 1M build takes minutes on 2 cores)",
    )
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--hnsw-ef-construction", type=int, default=80)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    threadpool_limits(1)
    vectors, _ = item_vectors(args.items)
    rng = np.random.default_rng(7)
    # queries look like user vectors: the normalised mean of a few items of one cluster
    picks = rng.integers(0, args.items, (args.queries, 5))
    queries = vectors[picks].mean(axis=1)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    rows = []

    def build(kind, data, **options):
        start = time.perf_counter()
        index = make_index(kind, data.shape[1], **options)
        index.add(data)
        return index, time.perf_counter() - start

    exact, t_exact = build("exact", vectors)
    med, p99, _ = per_query_ms(exact, queries[:30])
    truth = exact.search(queries, 10)[0]
    rows.append(("numpy exact (blocked matmul)", f"{args.items:,}", "–", t_exact, med, p99, 1.0))
    flat, t_flat = build("flat", vectors)
    med, p99, ids = per_query_ms(flat, queries[:30])
    rows.append(
        (
            "faiss flat (exact)",
            f"{args.items:,}",
            "–",
            t_flat,
            med,
            p99,
            recall_at_k(ids, truth[:30]),
        )
    )
    del flat
    ivf, t_ivf = build("ivf", vectors)
    for nprobe in (4, 8, 16, 32, 64):
        ivf.set_nprobe(nprobe)
        med, p99, ids = per_query_ms(ivf, queries)
        rows.append(
            (
                f"faiss IVF-flat (nlist {ivf.nlist})",
                f"{args.items:,}",
                f"nprobe {nprobe}",
                t_ivf,
                med,
                p99,
                recall_at_k(ids, truth),
            )
        )
    del ivf
    n_h = min(args.hnsw_items, args.items)
    sub = vectors[:n_h]
    sub_truth = exact.search(queries, 10)[0] if n_h == args.items else None
    if sub_truth is None:
        small = make_index("exact", sub.shape[1])
        small.add(sub)
        sub_truth = small.search(queries, 10)[0]
    hnsw, t_hnsw = build("hnsw", sub, m=args.hnsw_m, ef_construction=args.hnsw_ef_construction)
    for ef in (64, 128, 256, 512):
        hnsw.set_ef_search(ef)
        med, p99, ids = per_query_ms(hnsw, queries)
        rows.append(
            (
                f"faiss HNSW (M {args.hnsw_m}, efC {args.hnsw_ef_construction})",
                f"{n_h:,}",
                f"efSearch {ef}",
                t_hnsw,
                med,
                p99,
                recall_at_k(ids, sub_truth),
            )
        )
    table = [
        "| index | items | search setting | build (s) | query median (ms) | query p99 (ms) "
        "| recall@10 vs exact |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, n, setting, build_s, med, p99, rec in rows:
        table.append(
            f"| {name} | {n} | {setting} | {build_s:.1f} | {med:.2f} | {p99:.2f} | {rec:.3f} |"
        )
    text = "\n".join(table)
    print(text)
    if not args.no_write:
        write_section(
            "index",
            "Vector index (service)",
            f"""
Synthetic catalog: {args.items:,} items, 384-d unit vectors drawn around 256 clusters in a
48-dim subspace plus noise (embedding-like; pure Gaussian vectors are the worst case for any
ANN index). {args.queries} queries shaped like user vectors (normalised mean of 5 items), one at
a time, one thread (`OPENBLAS_NUM_THREADS=1`, `faiss.omp_set_num_threads(1)`), k = 10. Recall@10 is
measured against the exact top 10 of the same items. HNSW is built on the first {n_h:,} items
only (its build on 1M items takes minutes on this shared 2-core machine). The service uses IVF
for catalogs of 100,000 items and more (`index_kind=auto`), nprobe 16 unless told otherwise.

{text}
""",
            "benchmarks/bench_index.py",
        )


if __name__ == "__main__":
    main()
