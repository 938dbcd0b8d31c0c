"""Benchmark: the sparse collaborative backbone (``sparse-ease``, the hybrid's
``backbone.kind = "sparse"``) against the dense one, side by side in one run through the
evaluation harness; a curve of quality and memory against the neighbour count; and a
synthetic large catalog that the dense models cannot hold. Writes the "sparse" section at the
end of docs/benchmarks.md.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_sparse.py --part main --dataset ml-100k
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_sparse.py --part main --dataset ml-latest-small
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_sparse.py --part curve
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_sparse.py --part synthetic
    python benchmarks/bench_sparse.py --render

Each part saves its results to ``reports/benchmarks/sparse-<part>.json``; the section is
rendered from every saved file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._report import write_section
from benchmarks.bench_models import OUT, ROOT, import_model_libraries

DATA = Path(os.environ.get("AVREC_SHARED_DATA", ROOT.parent / "shared" / "data")) / "ready"

NOQ = {"query_encoder": None}
SPARSE_HYBRID = {**NOQ, "backbone": {"kind": "sparse"}}
#: row label -> (model name, config)
ROWS = {
    "ease": ("ease", {}),
    "sparse-ease": ("sparse-ease", {}),
    "hybrid": ("hybrid", NOQ),
    "hybrid (sparse backbone)": ("hybrid", SPARSE_HYBRID),
}
#: dataset -> (protocol, seeds)
MAIN = {"ml-100k": ("msr", [0, 1, 2]), "ml-latest-small": ("random", [0])}
CURVE_K = [16, 32, 64, 128, 256]
#: the large-catalog targets: 0.98x the dense hybrid, 1.3x two-tower (docs/benchmarks.md)
TWO_TOWER_ML_LATEST = 0.2945


def _evaluate_row(dataset, features, protocol, seeds, name, config) -> dict:
    from avrec.evaluation.runner import evaluate

    runs = evaluate(
        dataset,
        protocol,
        [name],
        [10],
        seeds,
        {name: config},
        item_features=features,
        log=lambda m: print(m, flush=True),
    )
    return {
        "ndcg@10": float(np.mean([r.metrics["ndcg@10"] for r in runs])),
        "per_seed": [round(float(r.metrics["ndcg@10"]), 4) for r in runs],
        "fit_s": float(np.median([r.fit_seconds for r in runs])),
        "peak_mb": float(max(r.peak_mb for r in runs)),
    }


def _b_bytes(dataset, name: str, config: dict) -> int:
    """Bytes of the fitted item x item weights on the whole dataset (dense: 4 n²)."""
    from avrec.models.base import TrainData
    from avrec.models.baselines.sparse_ease import SparseEASE, sparse_bytes

    n = dataset.n_items
    if name != "sparse-ease":
        return 4 * n * n
    model = SparseEASE(config).fit(TrainData.from_dataset(dataset))
    return sparse_bytes(model.weights)


def run_main(name: str, rows: list[str], seeds_given: list[int] | None = None) -> dict:
    from avrec.data.loaders import load_dataset
    from avrec.fusion.features import item_features

    dataset = load_dataset(DATA / name)
    features = item_features(dataset)
    protocol, seeds = MAIN[name]
    key = name
    if seeds_given and seeds_given != seeds:  # other seeds: a table of their own
        seeds, key = seeds_given, f"{name} seeds {seeds_given}"
    out = {"dataset": name, "protocol": protocol, "seeds": seeds, "n_items": dataset.n_items}
    out["load_before"] = os.getloadavg()[0]
    out["run_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out["rows"] = {}
    for label in rows:
        model, config = ROWS[label]
        row = _evaluate_row(dataset, features, protocol, seeds, model, config)
        if model != "hybrid":
            row["b_mib"] = _b_bytes(dataset, model, config) / 2**20
        row["run_at"] = time.strftime("%H:%M UTC", time.gmtime())
        row["load"] = os.getloadavg()[0]
        out["rows"][label] = row
        print(label, row, flush=True)
        out["load_after"] = os.getloadavg()[0]
        _save_main(key, out)  # each row as it comes: a long run keeps what it measured
    return out


def _save_main(name: str, res: dict) -> None:
    saved = _load("main") or {}
    old = saved.get(name, {}).get("rows", {})
    saved[name] = {**res, "rows": {**old, **res["rows"]}}
    (OUT / "sparse-main.json").write_text(json.dumps(saved, indent=2))


def run_curve(ks: list[int], hybrid_ks: list[int]) -> dict:
    """sparse-ease (and the sparse hybrid at ``hybrid_ks``) on ml-latest-small, seed 0."""
    from avrec.data.loaders import load_dataset
    from avrec.fusion.features import item_features

    dataset = load_dataset(DATA / "ml-latest-small")
    features = item_features(dataset)
    out: dict = {"dataset": "ml-latest-small", "protocol": "random", "seeds": [0], "rows": []}
    out["load_before"] = os.getloadavg()[0]
    for k in ks:
        config = {"neighbors": k}
        row = _evaluate_row(dataset, features, "random", [0], "sparse-ease", config)
        row.update(model="sparse-ease", k=k, b_mib=_b_bytes(dataset, "sparse-ease", config) / 2**20)
        out["rows"].append(row)
        print(row, flush=True)
    for k in hybrid_ks:
        config = {**NOQ, "backbone": {"kind": "sparse", "neighbors": k}}
        row = _evaluate_row(dataset, features, "random", [0], "hybrid", config)
        row.update(model="hybrid (sparse backbone)", k=k)
        out["rows"].append(row)
        print(row, flush=True)
    out["load_after"] = os.getloadavg()[0]
    out["run_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return out


def run_synthetic(n_items: int, n_users: int, per_user: int, k: int) -> dict:
    """sparse-ease alone on a synthetic catalog (benchmarks/synthetic_catalog.py): each
    user's most recent item held out; NDCG@10 over the full catalog against popularity."""
    import scipy.sparse as sp

    from avrec.models.arrays import top_k
    from avrec.models.baselines.sparse_ease import sparse_bytes, sparse_ease_weights
    from avrec.models.memory import PeakMemory
    from benchmarks.synthetic_catalog import histories, item_vectors

    _, cluster = item_vectors(n_items)
    rec = histories(cluster, n_users, per_user).tocsr()
    held = rec.copy()
    held.data = (held.data == 1).astype(np.float32)  # recency rank 1: the most recent item
    held.eliminate_zeros()
    train = (rec - rec.multiply(held)).tocsr()
    train.eliminate_zeros()
    x = (train > 0).astype(np.float64)
    with PeakMemory() as peak:
        t0 = time.perf_counter()
        b = sparse_ease_weights(x, 500.0, k)
        fit_s = time.perf_counter() - t0
    users = np.flatnonzero(np.diff(held.indptr) == 1)
    target = np.full(n_users, -1)
    target[users] = held.indices[held.indptr[users]]
    pop = np.asarray(x.sum(axis=0)).ravel()

    def ndcg(score_fn) -> float:
        gains = []
        for start in range(0, len(users), 1000):
            u = users[start : start + 1000]
            s = score_fn(u)
            s[x[u].nonzero()] = -np.inf
            idx, _ = top_k(s, 10)
            hit = idx == target[u][:, None]
            gains.append((hit / np.log2(np.arange(2, 12))).sum(axis=1))
        return float(np.concatenate(gains).mean())

    t0 = time.perf_counter()
    q_sparse = ndcg(lambda u: (sp.csr_matrix(x[u], dtype=np.float32) @ b).toarray())
    score_s = time.perf_counter() - t0
    q_pop = ndcg(lambda u: np.tile(pop.astype(np.float32), (len(u), 1)))
    return {
        "n_items": n_items,
        "n_users": n_users,
        "interactions": int(rec.nnz),
        "k": k,
        "fit_s": fit_s,
        "peak_mb": peak.mib,
        "b_mib": sparse_bytes(b) / 2**20,
        "dense_b_gib": 4 * n_items**2 / 2**30,
        "ndcg_sparse": q_sparse,
        "ndcg_popularity": q_pop,
        "score_s": score_s,
        "test_users": len(users),
        "run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


#: what was tried on the way (single runs of scripts/one-off evaluations through the same
#: harness, seed 0), and what is still dense; written by hand, kept with the figures
NOTES = """**Tried, kept or not** (seed 0, one evaluation each, same harness; 2026-12-07):

- Neighbours by raw co-occurrence (largest Gram entries) against its cosines, sparse-ease
  k = 128: ml-100k `msr` 0.4660 against 0.4749; ml-latest-small `random` 0.3655 against
  0.3685. Raw counts favour popular items; **cosine kept**.
- The content side information in choosing the neighbours (cosines of `XᵀX + 50 F Fᵀ`)
  against only inside the k x k solve, sparse-ease with the hybrid's backbone settings
  (side weight 50, denoising 0.5) on ml-latest-small: 0.3452 against 0.3753 (dense EASE
  with the same settings: 0.3783); the hybrid on the sparse backbone: 0.3591 against 0.3913.
  With it, a rare item's neighbours are its content look-alikes, which it never co-occurs
  with; **solve only kept**.
- sparse-ease k = 256 on ml-100k (raw-count neighbours): 0.4751 against 0.4660 at k = 128;
  l2 = 200 instead of 500: 0.4662 (no gain; l2 kept at EASE's 500).
- Fit speed: the local Gram matrices of a batch of items in one block-diagonal sparse
  product instead of one product per item (synthetic 20,000 items, 200,000 interactions,
  k = 100: 60 s to 30 s, same NDCG); the side information's thin columns (people named on
  a few items) as extra rows of X and only the dense ones (text vectors) by batched BLAS
  (ml-100k hybrid backbone: 27 s to 16 s, same weights).

**Default.** Where the dense hybrid does not fit in memory (`models.memory.require_dense`,
19 bytes per pair of items), `avrec train` now trains the hybrid on the sparse backbone
(`models.registry.LARGE_CATALOG_CONFIG`, k = `backbone.neighbors` = 100) instead of
two-tower: against the dense hybrid 0.998x on ml-100k `msr` (3 seeds) and 1.004x and 1.021x
on ml-latest-small `random` (seeds 0 and 1; mean 0.3894 against 0.3847), and 1.32x two-tower
(0.3894 against 0.2945, both means of seeds 0 and 1) on ml-latest-small (targets 0.98x and
1.3x). The hybrid is not sensitive to k (32: 0.3895, 100: 0.3913, 200:
0.3926 on ml-latest-small seed 0), so k stays 100 (B's memory is linear in k). Where the
dense hybrid fits, it stays the default: the sparse one is better on ml-latest-small
(two seeds, with half the peak memory and a shorter fit) but not on ml-100k `msr` (0.998x),
and on ml-100k `cold-items` (seed 0, one run each) it is below: 0.4621 against the dense
hybrid's 0.4758 (0.971x; k = 300: 0.4540, so not a matter of the cold columns' pruning
alone; this protocol's seeds spread from 0.36 to 0.48 in "models" above). Cold users and next
item were not compared. Not enough to switch.

**Still dense with the sparse backbone** (each is skipped or linear in the catalog): the
short-history first-items map (items x items float32; skipped above `short_history.max_items`
= 20,000 items or where it does not fit in memory); the cold-item ranker (only up to
`cold_ranker.max_items` = 5,000 items); scoring (a batch of users x items, as every model);
the content part and side information (items x text dimensions, items x people named on two
or more items: linear in the catalog, but the people columns grow with it); the VAE (items x
hidden units). The cold items' columns and rows are computed a block at a time and pruned to
k entries each.
"""


def _load(part: str) -> dict | None:
    path = OUT / f"sparse-{part}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def render() -> str:
    parts = [
        "The sparse collaborative backbone (issue #31, first point): `sparse-ease` "
        "(models/baselines/sparse_ease.py) keeps, for each item, the k items with the largest "
        "cosines of the co-occurrence matrix (items that never co-occur with it are not "
        "candidates) and solves EASE's ridge regression on them alone (the hybrid's content "
        "side information and denoising inside that k x k solve), so B is items x items CSR "
        "with at most k entries per column; the hybrid takes it with "
        '`{"backbone": {"kind": "sparse"}}` '
        "(k = `backbone.neighbors`). Through the evaluation harness, models side by side in "
        "one run; fit time median per training run, peak MiB the most memory one fit added "
        "(`models.memory.PeakMemory`), B the learned item x item weights (dense: 4 n² bytes; "
        "sparse-ease: fitted on the whole dataset). Times come from a machine shared with "
        "other work: each row says when it finished and the 1-minute load then (2 cores), "
        "so compare fit times within similar loads only. Targets: the large-catalog default "
        f">= 0.98x the dense hybrid, and >= 1.3x two-tower ({TWO_TOWER_ML_LATEST}) on "
        "ml-latest-small.\n"
    ]
    main = _load("main") or {}
    for res in main.values():
        name = res["dataset"]
        dense = res["rows"].get("hybrid", {}).get("ndcg@10")
        lines = [
            f"**{name} `{res['protocol']}`** (seeds {res['seeds']}, {res['n_items']:,} items)\n",
            "| model | ndcg@10 | / dense hybrid | fit (s) | peak MiB | B MiB | finished (load) |",
            "|---|---|---|---|---|---|---|",
        ]
        for label, row in res["rows"].items():
            seeds = (
                f" ({', '.join(f'{v:.4f}' for v in row['per_seed'])})"
                if len(row["per_seed"]) > 1
                else ""
            )
            ratio = f"{row['ndcg@10'] / dense:.3f}" if dense else "–"
            b = f"{row['b_mib']:.1f}" if "b_mib" in row else "–"
            when = f"{row['run_at']} ({row['load']:.1f})" if "run_at" in row else "–"
            lines.append(
                f"| {label} | {row['ndcg@10']:.4f}{seeds} | {ratio} | {row['fit_s']:.1f} | "
                f"{row['peak_mb']:.0f} | {b} | {when} |"
            )
        parts.append("\n".join(lines) + "\n")
    curve = _load("curve")
    if curve:
        lines = [
            f"**Neighbour count k** (ml-latest-small `random`, seed 0; run at "
            f"{curve['run_at']}; load {curve['load_before']:.1f} before, "
            f"{curve['load_after']:.1f} after)\n",
            "| model | k | ndcg@10 | fit (s) | peak MiB | B MiB |",
            "|---|---|---|---|---|---|",
        ]
        for row in curve["rows"]:
            b = f"{row['b_mib']:.1f}" if "b_mib" in row else "–"
            lines.append(
                f"| {row['model']} | {row['k']} | {row['ndcg@10']:.4f} | {row['fit_s']:.1f} | "
                f"{row['peak_mb']:.0f} | {b} |"
            )
        parts.append("\n".join(lines) + "\n")
    syn = _load("synthetic")
    if syn:
        parts.append(
            f"**Synthetic large catalog** (benchmarks/synthetic_catalog.py: "
            f"{syn['n_items']:,} items, {syn['n_users']:,} users, {syn['interactions']:,} "
            f"interactions, each user's most recent item held out, {syn['test_users']:,} test "
            f"users; run at {syn['run_at']}): sparse-ease k = {syn['k']} fits in "
            f"{syn['fit_s']:.0f} s with a peak of {syn['peak_mb']:.0f} MiB; B is "
            f"{syn['b_mib']:.0f} MiB (dense float32 B: {syn['dense_b_gib']:.0f} GiB); "
            f"NDCG@10 {syn['ndcg_sparse']:.4f} against popularity's "
            f"{syn['ndcg_popularity']:.4f}; scoring every test user took "
            f"{syn['score_s']:.0f} s. The generator draws each user's items uniformly from "
            "one cluster of items (256 clusters), so the most a model can learn is the cluster: "
            "a random order within it scores about 10 / (cluster size - history) x 0.45 "
            "(about 0.006 here), which sparse-ease reaches; popularity is near 0. "
            "Nothing in the fit is items x items or users x items dense; its peak is "
            "mostly the n x k neighbour and weight arrays (int64 / float64) and B's assembly.\n"
        )
    return "\n".join([*parts, NOTES])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["main", "curve", "synthetic"])
    ap.add_argument("--dataset", default="ml-100k", choices=list(MAIN))
    ap.add_argument("--rows", default=";".join(ROWS), help="main: rows to (re)run, ';'-separated")
    ap.add_argument("--seeds", default="", help="main: other seeds than the plan's")
    ap.add_argument("--ks", default=",".join(map(str, CURVE_K)))
    ap.add_argument("--hybrid-ks", default="", help="curve: k values for the sparse hybrid")
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--per-user", type=int, default=40)
    ap.add_argument("--k", type=int, default=100, help="synthetic: neighbours")
    ap.add_argument("--render", action="store_true", help="only rewrite the section")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.render and args.part:
        import_model_libraries()
        if args.part == "main":
            seeds = [int(s) for s in args.seeds.split(",") if s] or None
            run_main(args.dataset, [r for r in args.rows.split(";") if r], seeds)
        elif args.part == "curve":
            ks = [int(k) for k in args.ks.split(",") if k]
            hks = [int(k) for k in args.hybrid_ks.split(",") if k]
            saved = run_curve(ks, hks)
        else:
            saved = run_synthetic(args.items, args.users, args.per_user, args.k)
        if args.part != "main":
            (OUT / f"sparse-{args.part}.json").write_text(json.dumps(saved, indent=2))
    write_section(
        "sparse", "Sparse backbone: quality and memory", render(), "benchmarks/bench_sparse.py"
    )


if __name__ == "__main__":
    main()
