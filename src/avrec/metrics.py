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


#: Steck's smoothing of the list's genre distribution towards the target: ``q~ = (1 - a) q + a p``
SMOOTHING = 0.01


def item_genre_distribution(genres: np.ndarray) -> np.ndarray:
    """``p(g|i)``: each row of a genre (one-hot or weighted) matrix scaled to sum to 1; rows
    without genres stay 0."""
    g = np.abs(np.asarray(genres, dtype=np.float64))
    total = g.sum(axis=1, keepdims=True)
    return g / np.where(total > 0, total, 1.0)


def genre_distribution(
    items: Items, item_genres: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Genre distribution of a set of items, ``sum_i w_i p(g|i) / sum_i w_i`` over the items that
    have genres (``item_genres``: rows ``p(g|i)``, see :func:`item_genre_distribution`); all 0
    where none has any."""
    rows = np.asarray(item_genres, dtype=np.float64)[np.asarray(items, dtype=np.int64)]
    w = np.ones(len(rows)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w * (rows.sum(axis=1) > 0)
    total = w.sum()
    return (w @ rows) / total if total > 0 else np.zeros(rows.shape[1])


def miscalibration_rows(p: np.ndarray, q: np.ndarray, smoothing: float = SMOOTHING) -> np.ndarray:
    """:func:`miscalibration` of ``p`` against each row of ``q`` ``[n, G]``."""
    p = np.asarray(p, dtype=np.float64)
    q = np.atleast_2d(np.asarray(q, dtype=np.float64))
    smoothed = (1 - smoothing) * q + smoothing * p[None, :]
    support = p > 0
    with np.errstate(divide="ignore"):
        terms = p[support] * (np.log(p[support])[None, :] - np.log(smoothed[:, support]))
    return terms.sum(axis=1)


def miscalibration(p: np.ndarray, q: np.ndarray, smoothing: float = SMOOTHING) -> float:
    """Steck's miscalibration ``KL(p || q~)`` in nats: ``p`` the genre distribution of a
    person's history, ``q`` that of their list, ``q~ = (1 - a) q + a p`` (``a = smoothing``;
    finite wherever ``a > 0``). 0 for a perfectly calibrated list (or an empty ``p``)."""
    return float(miscalibration_rows(p, q, smoothing)[0])


def long_tail_items(item_popularity: np.ndarray, head_share: float = 0.8) -> np.ndarray:
    """Boolean mask of the long tail: every item outside the short head, the most popular
    items that together make up ``head_share`` of the interactions (the fewest such items,
    ties broken by catalog position). Items without interactions are in the tail."""
    pop = np.asarray(item_popularity, dtype=np.float64)
    order = np.argsort(-pop, kind="stable")
    cumulative = np.cumsum(pop[order])
    tail = np.ones(len(pop), dtype=bool)
    if len(pop) and cumulative[-1] > 0:
        n_head = int(np.searchsorted(cumulative, head_share * cumulative[-1] - 1e-9)) + 1
        tail[order[:n_head]] = False
    return tail


def long_tail_share(recommendation: Items, tail: np.ndarray) -> float:
    """Share of the list's items in the long tail (``tail``: :func:`long_tail_items`)."""
    if not len(recommendation):
        return 0.0
    return float(np.mean(np.asarray(tail)[np.asarray(recommendation, dtype=np.int64)]))


def popularity_percentiles(item_popularity: np.ndarray) -> np.ndarray:
    """Each item's popularity percentile in [0, 1]: the share of the catalog with fewer
    interactions plus half the share with as many (mid-rank; the most popular of ``n``
    distinct counts gets ``1 - 1/(2n)``)."""
    pop = np.asarray(item_popularity, dtype=np.float64)
    n = len(pop)
    if not n:
        return pop
    ordered = np.sort(pop)
    below = np.searchsorted(ordered, pop, side="left")
    same = np.searchsorted(ordered, pop, side="right") - below
    return (below + same / 2.0) / n


def mean_percentile(items: Items, percentiles: np.ndarray) -> float:
    """Average popularity percentile of ``items`` (NaN for none): of a list, or of a history."""
    if not len(items):
        return float("nan")
    return float(np.mean(np.asarray(percentiles)[np.asarray(items, dtype=np.int64)]))


RANKING_METRICS = {
    "recall": recall,
    "precision": precision,
    "ndcg": ndcg,
    "hr": hit_rate,
    "mrr": mrr,
    "map": average_precision,
    "f1": f1,
}
