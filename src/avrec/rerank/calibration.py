"""Calibrated re-ranking (Steck, "Calibrated Recommendations", RecSys 2018): a list whose genre
mix matches the person's history.

Greedily maximises ``(1 - lam) * sum(rel_I) - lam * KL(p || q~(I))`` where ``p`` is the genre
distribution of the history (weighted), ``q(I)`` that of the list (items weighted equally) and
``q~ = (1 - a) q + a p`` with ``a = 0.01`` so that the divergence stays finite. Each item's
genre distribution spreads its mass equally over its genres (``metrics.item_genre_distribution``).
Each step scores every remaining candidate against the list so far: ``O(k M G)``.

The relevance of a candidate is the NDCG discount of its place in the score order,
``1 / log2(2 + rank)`` (tied scores share the better place): what a list loses in NDCG when the
item leaves its place. On ml-100k (docs/benchmarks.md, "Re-ranking") it halves the
miscalibration at a smaller NDCG cost than min-max scaled or z-scored scores.
"""

from __future__ import annotations

import numpy as np

from avrec.metrics import SMOOTHING, miscalibration_rows
from avrec.rerank.dpp import relevance as scaled
from avrec.rerank.dpp import score_order


def rank_relevance(ordered_scores: np.ndarray) -> np.ndarray:
    """``1 / log2(2 + rank)`` of scores sorted best first; equal scores share the better
    rank."""
    desc = -np.asarray(ordered_scores, dtype=np.float64)
    ranks = np.searchsorted(desc, desc, side="left")
    return 1.0 / np.log2(2.0 + ranks)


def calibrated(
    candidates: np.ndarray,
    scores: np.ndarray,
    item_genres: np.ndarray,
    target: np.ndarray,
    k: int,
    diversity: float,
    smoothing: float = SMOOTHING,
    relevance: str = "rank",
) -> np.ndarray:
    """Pick ``k`` of ``candidates`` (best first) trading relevance for calibration to
    ``target`` (``p``: a genre distribution summing to 1).

    ``item_genres``: ``[n_items, G]`` rows ``p(g|i)`` (summing to 1, or all 0 for an item
    without genres; such items leave ``q`` as it is). ``diversity`` is Steck's ``lambda``: 0
    keeps the score order. ``relevance``: ``"rank"`` (:func:`rank_relevance`) or ``"scores"``
    (min-max scaled to [0, 1], as in MMR). Non-finite scores
    are dropped; ties keep the input order (score order first). An empty ``target`` (no
    genres in the history) keeps the score order."""
    candidates, scores = score_order(candidates, scores)
    k = min(k, len(candidates))
    target = np.asarray(target, dtype=np.float64)
    if diversity <= 0 or k < 1 or target.sum() <= 0:
        return candidates[:k]
    target = target / target.sum()
    rel = rank_relevance(scores) if relevance == "rank" else scaled(scores)
    genres = np.asarray(item_genres, dtype=np.float64)[candidates]
    mass = genres.sum(axis=1)
    picked: list[int] = []
    available = np.ones(len(candidates), dtype=bool)
    total = np.zeros(genres.shape[1])  # sum of the picked items' p(g|i)
    count = 0.0  # how many picked items have genres
    gained = 0.0  # sum of the picked items' relevance
    for _ in range(k):
        # q of the list with each candidate added: (total + p(.|i)) / (count + has_genres(i))
        sums = total[None, :] + genres
        counts = count + (mass > 0)
        q = np.divide(sums, counts[:, None], out=np.zeros_like(sums), where=counts[:, None] > 0)
        kl = miscalibration_rows(target, q, smoothing)
        value = (1 - diversity) * (gained + rel) - diversity * kl
        value[~available] = -np.inf
        best = int(np.argmax(value))
        picked.append(best)
        available[best] = False
        total += genres[best]
        count += float(mass[best] > 0)
        gained += rel[best]
    return candidates[picked]
