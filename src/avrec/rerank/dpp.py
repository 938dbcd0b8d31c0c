"""Determinantal point process re-ranking: fast greedy MAP inference (Chen, Zhang and Zhou,
"Fast Greedy MAP Inference for Determinantal Point Process to Improve Recommendation
Diversity", NeurIPS 2018).

The kernel is ``L = diag(r) S diag(r)``: quality ``r_i = exp(alpha * rel_i)`` and ``S`` the
cosine similarity of the item vectors. Since ``log det L_Y = 2 alpha sum(rel_Y) + log det S_Y``,
the greedy step that maximises the log-determinant gain is run on ``S`` alone, with the
relevance added in log space (no overflow for large ``alpha``). Each step updates one row of
the incremental Cholesky factor of ``S_Y`` for every candidate: ``O(k^2 M)`` for ``k`` of ``M``.
With ``alpha = theta / (2 (1 - theta))`` the objective is the paper's
``theta * sum(rel_Y) + (1 - theta) * log det S_Y`` (up to a factor).
"""

from __future__ import annotations

import numpy as np

from avrec.metrics import cosine_matrix

#: a candidate whose remaining variance falls to this is spanned by the picked items (the
#: paper's stopping rule); the rest of the list is then filled in score order
EPSILON = 1e-10


def relevance(scores: np.ndarray) -> np.ndarray:
    """Scores min-max scaled to [0, 1] (all 1 where they are all equal), as MMR scales them."""
    scores = np.asarray(scores, dtype=np.float64)
    if not len(scores):
        return scores
    span = scores.max() - scores.min()
    return (scores - scores.min()) / span if span > 0 else np.ones_like(scores)


def score_order(candidates: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Finite-scored candidates and their scores, best first (ties keep the input order)."""
    candidates = np.asarray(candidates)
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    candidates, scores = candidates[finite], scores[finite]
    order = np.argsort(-scores, kind="stable")
    return candidates[order], scores[order]


def similarity_kernel(vectors: np.ndarray) -> np.ndarray:
    """``S``: cosine similarities, with 1 on the diagonal (an all-zero vector is like no other
    item but still a valid pick)."""
    sim = cosine_matrix(vectors)
    np.fill_diagonal(sim, 1.0)
    return sim


def greedy_map(quality: np.ndarray, sim: np.ndarray, k: int) -> list[int]:
    """Positions of ``k`` items picked greedily to maximise ``sum(quality_Y) + log det S_Y``
    (``quality = 2 alpha rel``). Ties go to the earlier position; once every remaining item
    is spanned by the picked ones (variance below :data:`EPSILON`), the rest follow by
    quality."""
    m = len(quality)
    k = min(k, m)
    factors = np.zeros((k, m))  # row t: the t-th column of each candidate's Cholesky factor
    variance = np.diag(sim).astype(np.float64).copy()  # d_i^2 of S, shrinks as items are picked
    available = np.ones(m, dtype=bool)
    picked: list[int] = []
    with np.errstate(divide="ignore"):
        while len(picked) < k:
            spanned = variance <= EPSILON
            gain = quality + np.log(np.where(spanned, 1.0, variance))
            gain[~available | spanned] = -np.inf
            if not np.isfinite(gain).any():
                rest = np.flatnonzero(available)
                rest = rest[np.argsort(-quality[rest], kind="stable")]
                picked += rest[: k - len(picked)].tolist()
                break
            j = int(np.argmax(gain))
            t = len(picked)
            picked.append(j)
            available[j] = False
            if t + 1 == k:
                break
            e = (sim[j] - factors[:t, j] @ factors[:t]) / np.sqrt(variance[j])
            factors[t] = e
            variance = variance - e**2
    return picked


def dpp(
    candidates: np.ndarray,
    scores: np.ndarray,
    item_vectors: np.ndarray,
    k: int,
    diversity: float,
    *,
    similarity: np.ndarray | None = None,
) -> np.ndarray:
    """Pick ``k`` of ``candidates`` (best first) by greedy DPP MAP inference.

    ``diversity`` in [0, 1] is ``1 - theta`` of the paper: 0 keeps the score order, 1 ignores
    the scores. Non-finite scores are dropped; ties in score keep the input order.
    ``similarity``: the ``S`` of ``candidates`` where already computed (aligned with them)."""
    candidates = np.asarray(candidates)
    scores = np.asarray(scores, dtype=np.float64)
    if similarity is not None:
        finite = np.isfinite(scores)
        similarity = np.asarray(similarity)[np.ix_(finite, finite)]
        candidates, scores = candidates[finite], scores[finite]
        order = np.argsort(-scores, kind="stable")
        similarity = similarity[np.ix_(order, order)]
        candidates, scores = candidates[order], scores[order]
    else:
        candidates, scores = score_order(candidates, scores)
    k = min(k, len(candidates))
    if diversity <= 0 or k <= 1:
        return candidates[:k]
    rel = relevance(scores)
    quality = rel * (1 - diversity) / diversity if diversity < 1 else np.zeros_like(rel)
    sim = similarity if similarity is not None else similarity_kernel(item_vectors[candidates])
    return candidates[greedy_map(quality, sim, k)]
