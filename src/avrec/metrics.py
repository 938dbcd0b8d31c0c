"""Metrics as small pure functions.

Ranking metrics take one user's ranked list (item indices, best first), the set of that
user's relevant (test) items and a cut-off ``k``; binary relevance. Beyond-accuracy metrics take
the recommendation lists of many users.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TypeAlias

import numpy as np

#: item indices: a list or an integer array
Items: TypeAlias = Sequence[int] | np.ndarray


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """``[n, n]`` cosine similarities of the rows of ``vectors`` in float64 (0 against an
    all-zero row): what ``rerank.diversity.mmr`` trades against relevance and what
    ``intra_list_diversity`` measures."""
    v = np.asarray(vectors, dtype=np.float64)
    # scale each row by its largest entry first: the squares of tiny entries (below ~1e-154)
    # underflow, and the norm of such a vector comes out wrong by up to a few parts in 1e4
    scale = np.abs(v).max(axis=1, keepdims=True, initial=0.0)
    v = v / np.where(scale > 0, scale, 1.0)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.where(norms > 0, norms, 1.0)
    return v @ v.T


def _hits(ranked: Items, relevant: Collection[int], k: int) -> np.ndarray:
    rel = relevant if isinstance(relevant, (set, frozenset)) else set(relevant)
    return np.fromiter((i in rel for i in list(ranked)[:k]), dtype=bool)


def precision(ranked: Items, relevant: Collection[int], k: int) -> float:
    return float(_hits(ranked, relevant, k).sum() / k) if k > 0 else 0.0


def recall(ranked: Items, relevant: Collection[int], k: int) -> float:
    return float(_hits(ranked, relevant, k).sum() / len(relevant)) if relevant else 0.0


def f1(ranked: Items, relevant: Collection[int], k: int) -> float:
    p, r = precision(ranked, relevant, k), recall(ranked, relevant, k)
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def hit_rate(ranked: Items, relevant: Collection[int], k: int) -> float:
    return float(_hits(ranked, relevant, k).any())


def mrr(ranked: Items, relevant: Collection[int], k: int) -> float:
    hits = np.flatnonzero(_hits(ranked, relevant, k))
    return 1.0 / (hits[0] + 1) if len(hits) else 0.0


def ndcg(ranked: Items, relevant: Collection[int], k: int) -> float:
    hits = _hits(ranked, relevant, k)
    if not relevant:
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float((hits * discounts[: len(hits)]).sum())
    idcg = float(discounts[: min(len(relevant), k)].sum())
    return dcg / idcg


def average_precision(ranked: Items, relevant: Collection[int], k: int) -> float:
    hits = _hits(ranked, relevant, k)
    if not relevant or not hits.any():
        return 0.0
    precisions = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precisions * hits).sum() / min(len(relevant), k))


def auc(scores: np.ndarray, relevant: Collection[int], candidates: np.ndarray) -> float:
    """Probability that a relevant item outscores a non-relevant one among ``candidates``
    (ties count one half)."""
    cand = np.asarray(candidates)
    rel_mask = np.isin(cand, np.fromiter(relevant, dtype=np.int64))
    pos, neg = scores[cand[rel_mask]], scores[cand[~rel_mask]]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    # Mann-Whitney U with average ranks over ties
    allv = np.concatenate([pos, neg])
    order = np.argsort(allv, kind="stable")
    sorted_v = allv[order]
    _, start, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks = np.empty_like(allv, dtype=float)
    ranks[order] = np.repeat(avg, counts)
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(predicted) - np.asarray(actual))))


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted) - np.asarray(actual)) ** 2)))


def catalog_coverage(recommendations: Sequence[Items], n_items: int) -> float:
    """Share of the catalog that appears in at least one list."""
    seen = {i for rec in recommendations for i in rec}
    return len(seen) / n_items if n_items else 0.0


def intra_list_diversity(recommendation: Items, item_vectors: np.ndarray) -> float:
    """Mean pairwise cosine distance between the items of one list (content distance)."""
    if len(recommendation) < 2:
        return 0.0
    sim = cosine_matrix(item_vectors[np.asarray(recommendation)])
    n = len(recommendation)
    return float((1.0 - sim)[np.triu_indices(n, 1)].mean())


def novelty(recommendation: Items, item_popularity: np.ndarray, n_users: int) -> float:
    """Mean self-information ``-log2(p(i))`` of the items, p = share of users who had item i."""
    if not len(recommendation):
        return 0.0
    p = np.maximum(item_popularity[np.asarray(recommendation)], 1) / max(n_users, 1)
    return float(np.mean(-np.log2(p)))


def popularity_bias(recommendation: Items, item_popularity: np.ndarray) -> float:
    """Average popularity (interaction count) of the recommended items (ARP)."""
    if not len(recommendation):
        return 0.0
    return float(np.mean(item_popularity[np.asarray(recommendation)]))


RANKING_METRICS = {
    "recall": recall,
    "precision": precision,
    "ndcg": ndcg,
    "hr": hit_rate,
    "mrr": mrr,
    "map": average_precision,
    "f1": f1,
}
