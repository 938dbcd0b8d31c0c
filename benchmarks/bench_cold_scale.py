"""The hybrid's cold-items part alone on a large synthetic sparse backbone: CPU seconds of the
exact searches against the IVF ones, and how far the approximate weights are from the exact.

A catalog of ``--items`` items in clusters of about 500, each item's 256-d content vector a
noisy image of its cluster (like benchmarks/bench_scale_train's stand-in text vectors), two
genres per cluster; ``--cold`` of the items are cold (no row or column in the backbone).
The backbone: each warm item's column holds ``--keep`` (the sparse backbone's default 100)
entries, four fifths drawn from its cluster's warm items, the rest from any warm item.

*IVF*: the part (``ColdItems.fit``, default settings) on the whole catalog. *Exact*: the same
part with ``ann_above`` out of reach, on the warm items plus ``--sample`` of the cold items
(everything of the part that does not depend on the other cold items is the same: the ridge
map is fitted on the warm items only, and each cold item's column and row depend on itself
and the warm items); its cost for all cold items is projected as the fixed part (the ridge
map's solve and product over the backbone, timed separately) plus the per-cold-item rest
times the cold items. The sampled cold items' columns and rows are compared between the two.

    nice -n 10 python benchmarks/bench_cold_scale.py --items 200000 --sample 2000
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from avrec.models.hybrid.config import ColdItemsConfig
from avrec.models.hybrid.parts import ColdItems


def synth(n_items: int, cold_share: float, keep: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n_clusters = max(16, n_items // 500)
    cluster = rng.integers(0, n_clusters, n_items)
    basis = rng.normal(size=(48, 256)).astype(np.float32)
    centres = rng.normal(size=(n_clusters, 48)).astype(np.float32)
    vectors = np.empty((n_items, 256), np.float32)
    for a in range(0, n_items, 100_000):
        b = min(n_items, a + 100_000)
        z = centres[cluster[a:b]] + 0.8 * rng.normal(size=(b - a, 48)).astype(np.float32)
        v = z @ basis + 0.5 * rng.normal(size=(b - a, 256)).astype(np.float32)
        vectors[a:b] = v / np.linalg.norm(v, axis=1, keepdims=True)
    genres = np.zeros((n_items, 20), np.float32)
    genres[np.arange(n_items), cluster % 20] = 1.0
    genres[np.arange(n_items), (cluster // 20 + 1 + cluster) % 20] = 1.0
    warm = rng.random(n_items) >= cold_share
    warm_idx = np.flatnonzero(warm)
    # warm items grouped by cluster: a draw inside a cluster is an offset into its range
    order = warm_idx[np.argsort(cluster[warm_idx], kind="stable")]
    bounds = np.searchsorted(cluster[order], np.arange(n_clusters + 1))
    # each warm column's rows, a chunk of columns at a time (int32 / float32: 1M items fit)
    rows = np.empty(len(warm_idx) * keep, np.int32)
    vals = np.empty(len(warm_idx) * keep, np.float32)
    for a in range(0, len(warm_idx), 100_000):
        cols = np.repeat(warm_idx[a : a + 100_000], keep)
        own = cluster[cols]
        size = np.maximum(bounds[own + 1] - bounds[own], 1)
        pick = bounds[own] + (rng.random(len(cols)) * size).astype(np.int64)
        near = order[np.minimum(pick, len(order) - 1)]
        anywhere = warm_idx[rng.integers(0, len(warm_idx), len(cols))]
        r = np.where(rng.random(len(cols)) < 0.8, near, anywhere)
        v = rng.lognormal(-4.0, 1.0, len(cols)) * np.where(rng.random(len(cols)) < 0.9, 1, -1)
        v[r == cols] = 0.0  # no diagonal
        rows[a * keep : a * keep + len(cols)] = r
        vals[a * keep : a * keep + len(cols)] = v
    indptr = np.zeros(n_items + 1, np.int64)
    indptr[1:] = np.cumsum(np.where(warm, keep, 0))
    csc = sp.csc_matrix((vals, rows, indptr), shape=(n_items, n_items))
    del rows, vals
    csc.sum_duplicates()
    csc.eliminate_zeros()
    weights = csc.tocsr()
    del csc
    return {"vectors": vectors, "genres": genres, "warm": warm, "weights": weights}


def data_of(genres: np.ndarray) -> SimpleNamespace:
    """What ``ColdItems.fit`` reads of the training data: the items and their genres."""
    return SimpleNamespace(
        items=pd.DataFrame(index=range(len(genres))), item_features={"genres": genres}
    )


def cpu() -> float:
    return time.process_time()


def fixed_cost(s: dict, cfg: ColdItemsConfig) -> float:
    """CPU seconds of the ridge map's solve and its product over the backbone (the part of
    the ridge columns that does not grow with the cold items)."""
    from avrec.models.hybrid.coldmap import cold_features

    t0 = cpu()
    f = cold_features(data_of(s["genres"]).items, s["vectors"], s["genres"]).astype(np.float64)
    fw = f[s["warm"]]
    g = np.linalg.solve(fw.T @ fw + cfg.ridge_l2 * np.eye(f.shape[1]), fw.T)
    _ = np.asarray(s["weights"][:, np.flatnonzero(s["warm"])] @ g.T)
    return cpu() - t0


def compare(approx: sp.csr_matrix, exact: sp.csr_matrix, sample, sub) -> dict:
    """Columns and rows of the sampled cold items between ``approx`` (all items) and
    ``exact`` (items ``sub``: the warm items and the sample): mean cosine and top-10 overlap."""
    e_idx = np.searchsorted(sub, sample)
    a_idx = sample
    out = {}
    for what, a, e in (
        ("column", approx[:, a_idx].T.tocsr(), exact[:, e_idx].T.tocsr()),
        ("row", approx[a_idx].tocsr(), exact[e_idx].tocsr()),
    ):
        cos, top = [], []
        for i in range(a.shape[0]):
            ra, re_ = a.getrow(i), e.getrow(i)
            ca = dict(zip(ra.indices.tolist(), ra.data.tolist(), strict=True))
            ce = dict(zip(sub[re_.indices].tolist(), re_.data.tolist(), strict=True))
            keys = set(ca) | set(ce)
            x = np.array([ca.get(k, 0.0) for k in keys])
            y = np.array([ce.get(k, 0.0) for k in keys])
            cos.append(float(x @ y / max(np.linalg.norm(x) * np.linalg.norm(y), 1e-30)))
            ta = set(sorted(ca, key=lambda k: -abs(ca[k]))[:10])
            te = set(sorted(ce, key=lambda k: -abs(ce[k]))[:10])
            top.append(len(ta & te) / max(len(te), 1))
        out[what] = {"cosine": float(np.mean(cos)), "top10_overlap": float(np.mean(top))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--cold", type=float, default=0.3, help="share of cold items")
    ap.add_argument("--keep", type=int, default=100, help="entries per backbone column")
    ap.add_argument("--sample", type=int, default=2000, help="cold items of the exact run")
    ap.add_argument("--no-exact", action="store_true")
    args = ap.parse_args()
    s = synth(args.items, args.cold, args.keep)
    warm, cold = s["warm"], np.flatnonzero(~s["warm"])
    cfg = ColdItemsConfig()
    res: dict = {
        "items": args.items,
        "cold": len(cold),
        "warm": int(warm.sum()),
        "nnz": int(s["weights"].nnz),
    }
    t0 = cpu()
    approx = ColdItems(cfg).fit(s["weights"], data_of(s["genres"]), s["vectors"], warm, args.keep)
    res["ivf_cpu_s"] = round(cpu() - t0, 1)
    res["fixed_cpu_s"] = round(fixed_cost(s, cfg), 1)
    if not args.no_exact:
        rng = np.random.default_rng(1)
        sample = np.sort(rng.choice(cold, min(args.sample, len(cold)), replace=False))
        sub = np.sort(np.concatenate([np.flatnonzero(warm), sample]))
        exact_cfg = cfg.model_copy(update={"ann_above": 10**12})
        t0 = cpu()
        exact = ColdItems(exact_cfg).fit(
            s["weights"][sub][:, sub],
            data_of(s["genres"][sub]),
            s["vectors"][sub],
            warm[sub],
            args.keep,
        )
        t = cpu() - t0
        res["exact_sample_cpu_s"] = round(t, 1)
        res["exact_projected_cpu_s"] = round(
            res["fixed_cpu_s"] + (t - res["fixed_cpu_s"]) * len(cold) / len(sample), 1
        )
        res["sample"] = len(sample)
        res["quality"] = compare(sp.csr_matrix(approx), sp.csr_matrix(exact), sample, sub)
    res["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
