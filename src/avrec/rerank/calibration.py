"""Calibrated re-ranking (Steck, "Calibrated Recommendations", RecSys 2018): a list whose genre
mix matches the person's history.

Fills the list one place at a time. At place ``j`` (0-based) it adds the candidate that
maximises ``(1 - lam) * d(j) * rel_i - lam * KL(p || q~(I + i))``, where ``d(j) = 1 / log2(2 +
j)`` is the NDCG discount of the place, ``p`` the genre distribution of the history, ``q(I)``
that of the list (items weighted equally) and ``q~ = (1 - a) q + a p`` keeps the divergence
finite. The relevance term is the expected DCG of the list, ``sum_j d(j) rel_(item at j)``,
rather than Steck's plain ``sum rel``: a place near the top is worth more than one near the
bottom, so the genres the list lacks are filled in its lower places, where NDCG loses least.
Each item's genre distribution spreads its mass equally over its genres
(``metrics.item_genre_distribution``). Each step scores every remaining candidate against the
list so far: ``O(k M G)``.

The relevance of a candidate is its reciprocal rank in the score order, ``1 / (1 + rank)``
(tied scores share the better rank): how much likelier the model's first item is to be
relevant than its tenth, independent of the scores' scale. The objective's smoothing ``a`` is
0.05, softer than the reported miscalibration's 0.01 (``metrics.SMOOTHING``): with 0.01 a genre
that has a small share of the history but none in the list dominates the divergence, and the
greedy spends its first places on it (docs/benchmarks.md, "Re-ranking", compares these
choices with Steck's).
"""

from __future__ import annotations

import numpy as np

from avrec.metrics import miscalibration_rows
from avrec.rerank.dpp import relevance as scaled
from avrec.rerank.dpp import score_order

#: ``a`` of the objective's ``q~`` (see the module docstring)
OBJECTIVE_SMOOTHING = 0.05
RELEVANCE = ("rank", "discount", "scores")


def ranks(ordered_scores: np.ndarray) -> np.ndarray:
    """0-based ranks of scores sorted best first; equal scores share the better rank."""
    desc = -np.asarray(ordered_scores, dtype=np.float64)
    return np.searchsorted(desc, desc, side="left")


def rank_relevance(ordered_scores: np.ndarray) -> np.ndarray:
    """``1 / (1 + rank)`` of scores sorted best first; equal scores share the better rank."""
    return 1.0 / (1.0 + ranks(ordered_scores))


def discount_relevance(ordered_scores: np.ndarray) -> np.ndarray:
    """``1 / log2(2 + rank)``, the NDCG discount of the candidate's own place (the earlier
    relevance, kept for the benchmark's comparison)."""
    return 1.0 / np.log2(2.0 + ranks(ordered_scores))


def calibrated(
    candidates: np.ndarray,
    scores: np.ndarray,
    item_genres: np.ndarray,
    target: np.ndarray,
    k: int,
    diversity: float,
    smoothing: float = OBJECTIVE_SMOOTHING,
    relevance: str = "rank",
    positional: bool = True,
) -> np.ndarray:
    """Pick ``k`` of ``candidates`` (best first) trading relevance for calibration to
    ``target`` (``p``: a genre distribution summing to 1).

    ``item_genres``: ``[n_items, G]`` rows ``p(g|i)`` (summing to 1, or all 0 for an item
    without genres; such items leave ``q`` as it is). ``diversity`` is Steck's ``lambda``: 0
    keeps the score order. ``relevance``: ``"rank"`` (:func:`rank_relevance`), ``"discount"``
    (:func:`discount_relevance`) or ``"scores"`` (min-max scaled to [0, 1], as in MMR).
    ``positional=False`` is Steck's objective (the relevance summed without the places'
    discounts). Non-finite scores are dropped; ties keep the input order (score order first).
    An empty ``target`` (no genres in the history) keeps the score order."""
    if relevance not in RELEVANCE:
        raise ValueError(f"relevance must be one of {RELEVANCE}; got {relevance!r}")
    candidates, scores = score_order(candidates, scores)
    k = min(k, len(candidates))
    target = np.asarray(target, dtype=np.float64)
    if diversity <= 0 or k < 1 or target.sum() <= 0:
        return candidates[:k]
    target = target / target.sum()
    rel = {"rank": rank_relevance, "discount": discount_relevance, "scores": scaled}[relevance](
        scores
    )
    genres = np.asarray(item_genres, dtype=np.float64)[candidates]
    mass = genres.sum(axis=1)
    picked: list[int] = []
    available = np.ones(len(candidates), dtype=bool)
    total = np.zeros(genres.shape[1])  # sum of the picked items' p(g|i)
    count = 0.0  # how many picked items have genres
    for place in range(k):
        # q of the list with each candidate added: (total + p(.|i)) / (count + has_genres(i))
        sums = total[None, :] + genres
        counts = count + (mass > 0)
        q = np.divide(sums, counts[:, None], out=np.zeros_like(sums), where=counts[:, None] > 0)
        kl = miscalibration_rows(target, q, smoothing)
        weight = 1.0 / np.log2(2.0 + place) if positional else 1.0
        # the relevance already gained is the same for every candidate: only the new term counts
        value = (1 - diversity) * weight * rel - diversity * kl
        value[~available] = -np.inf
        best = int(np.argmax(value))
        picked.append(best)
        available[best] = False
        total += genres[best]
        count += float(mass[best] > 0)
    return candidates[picked]
