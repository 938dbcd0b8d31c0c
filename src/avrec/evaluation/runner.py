"""Run models through a protocol: train on the training part only, rank (full catalog or the
protocol's candidates, training items excluded), score every test user, keep per-user values
for intervals and paired tests, and the lists for beyond-accuracy metrics."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from avrec.data.dataset import Dataset
from avrec.evaluation import metrics as M
from avrec.evaluation.protocols import Split, make_splits
from avrec.models.base import Recommender, TrainData, top_k
from avrec.models.registry import create_model

RANKING_BASELINES = ("popularity", "itemknn", "ease", "als")
RATING_BASELINES = ("bias",)
BATCH = 256


@dataclass
class ModelRun:
    """One model on one split."""

    model: str
    seed: int
    split: str
    per_user: pd.DataFrame  # user_id, train_size, then one column per metric
    metrics: dict[str, float]
    fit_seconds: float
    peak_mb: float
    recommendations: list[np.ndarray] = field(default_factory=list, repr=False)
    #: user -> relevant item indices (ranking runs), for analyses of the saved lists
    relevant: dict[str, set[int]] = field(default_factory=dict, repr=False)


def guard_no_leakage(split: Split, data: TrainData) -> None:
    """Test interactions must not reach training: not in the split, not in the matrix the
    model is given (the model sees nothing else about users: item features are content only)."""
    split.check_no_leakage()
    u = data.user_vocab.lookup(split.test["user_id"].tolist())
    i = data.item_vocab.lookup(split.test["item_id"].tolist())
    known = (u >= 0) & (i >= 0)
    if known.any() and np.asarray(data.matrix[u[known], i[known]]).ravel().any():
        raise AssertionError(f"{split.name}: test interactions reached the training matrix")


def _auc_rows(scores: np.ndarray, relevant: list[np.ndarray]) -> np.ndarray:
    out = np.full(len(relevant), np.nan)
    for n, rel in enumerate(relevant):
        cand = np.flatnonzero(np.isfinite(scores[n]))
        if len(rel) and len(cand) > len(rel):
            out[n] = M.auc(scores[n], rel, cand)
    return out


def rank_users(model: Recommender, split: Split, ks: Sequence[int], depth: int
               ) -> tuple[pd.DataFrame, list[np.ndarray], dict[str, set[int]]]:
    """Per-user ranking metrics; also returns each user's top-``depth`` list and scores."""
    test = split.test.groupby("user_id", sort=True)["item_id"].agg(list)
    users_ext = list(test.index)
    users = model.user_vocab.lookup(users_ext)
    candidates = None
    if split.candidates is not None:
        candidates = np.zeros(len(model.item_vocab), dtype=bool)
        idx = model.item_vocab.lookup(split.candidates)
        candidates[idx[idx >= 0]] = True
    rows, lists, relevant_sets = [], [], {}
    kmax = max(max(ks), depth)
    for start in range(0, len(users), BATCH):
        stop = min(start + BATCH, len(users))
        hist_lists = ([split.histories.get(u) for u in users_ext[start:stop]]
                      if split.histories else None)
        hist = model.history_matrix(users[start:stop], hist_lists)
        scores = model.masked_scores(users[start:stop], hist, exclude=hist, candidates=candidates)
        idx, top = top_k(scores, kmax)
        relevant = [model.item_vocab.lookup(t) for t in test.iloc[start:stop]]
        relevant = [r[r >= 0] for r in relevant]
        aucs = _auc_rows(scores, relevant)
        for n, rel in enumerate(relevant):
            ranked, rel_set = idx[n][np.isfinite(top[n])], set(rel.tolist())
            row = {"user_id": users_ext[start + n], "train_size": int(hist[n].nnz), "auc": aucs[n]}
            for k in ks:
                for name, fn in M.RANKING_METRICS.items():
                    row[f"{name}@{k}"] = fn(ranked, rel_set, k)
            rows.append(row)
            lists.append(ranked[:depth])
            relevant_sets[users_ext[start + n]] = rel_set
    return pd.DataFrame(rows), lists, relevant_sets


def beyond_accuracy(lists: Sequence[np.ndarray], k: int, data: TrainData,
                    item_vectors: np.ndarray) -> dict[str, float]:
    pop = np.asarray((data.matrix > 0).sum(axis=0)).ravel().astype(float)
    cut = [lst[:k] for lst in lists]
    return {
        f"coverage@{k}": M.catalog_coverage(cut, data.n_items),
        f"diversity@{k}": float(np.mean([M.intra_list_diversity(c, item_vectors) for c in cut])),
        f"novelty@{k}": float(np.mean([M.novelty(c, pop, data.n_users) for c in cut])),
        f"popularity@{k}": float(np.mean([M.popularity_bias(c, pop) for c in cut])),
    }


def run_rating(model: Recommender, split: Split) -> pd.DataFrame:
    if not hasattr(model, "predict"):
        raise TypeError(f"model {model.name!r} does not predict ratings")
    pred = model.predict(split.test["user_id"].tolist(), split.test["item_id"].tolist())
    err = pred - split.test["rating"].to_numpy(float)
    return pd.DataFrame({"user_id": split.test["user_id"], "abs_error": np.abs(err),
                         "sq_error": err**2})


def evaluate(dataset: Dataset, protocol: str, models: Sequence[str], ks: Sequence[int] = (10, 20),
             seeds: Sequence[int] = (0,), configs: dict[str, dict] | None = None,
             item_vectors: np.ndarray | None = None, depth: int = 100,
             log: Callable[[str], None] = print) -> list[ModelRun]:
    """Every model on every split of ``protocol`` for each seed. ``item_vectors``: content
    vectors aligned with ``dataset.items`` (given to models as the ``text`` feature and used
    for the diversity metric)."""
    configs = configs or {}
    if item_vectors is None:
        from avrec.fusion.features import genre_matrix

        item_vectors = genre_matrix(dataset.items)
    features = {"text": item_vectors}
    runs: list[ModelRun] = []
    for seed in seeds:
        for split in make_splits(dataset, protocol, seed):
            data = TrainData.from_dataset(dataset.with_interactions(split.train), features)
            guard_no_leakage(split, data)
            for name in models:
                config = {"seed": seed, **configs.get(name, {})}
                model = create_model(name, config)
                tracemalloc.start()
                t0 = time.perf_counter()
                model.fit(data)
                fit_s = time.perf_counter() - t0
                peak = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
                if split.task == "rating":
                    per_user = run_rating(model, split)
                    metrics = {"mae": float(per_user["abs_error"].mean()),
                               "rmse": float(np.sqrt(per_user["sq_error"].mean()))}
                    runs.append(ModelRun(name, seed, split.name, per_user, metrics, fit_s, peak))
                else:
                    per_user, lists, relevant = rank_users(model, split, ks, depth)
                    metrics = per_user.drop(columns=["user_id", "train_size"]).mean().to_dict()
                    metrics.update(beyond_accuracy(lists, min(ks), data, item_vectors))
                    runs.append(ModelRun(name, seed, split.name, per_user, metrics, fit_s, peak,
                                         lists, relevant))
                main = "rmse" if split.task == "rating" else f"ndcg@{min(ks)}"
                log(f"{protocol} seed={seed} {split.name} {name}: {main}={metrics[main]:.4f} "
                    f"(fit {fit_s:.1f} s)")
    return runs
