"""Maximal marginal relevance: trade relevance for content diversity in a ranked list."""

from __future__ import annotations

import numpy as np

from avrec.metrics import cosine_matrix


def mmr(
    candidates: np.ndarray,
    scores: np.ndarray,
    item_vectors: np.ndarray,
    k: int,
    diversity: float,
    *,
    similarity: np.ndarray | None = None,
) -> np.ndarray:
    """Pick ``k`` of ``candidates`` (best first) maximising
    ``(1 - diversity) * relevance - diversity * max similarity to the items already picked``.
    ``diversity = 0`` keeps the original order. Relevance is min-max scaled to [0, 1].
    ``similarity``: the candidates' cosine matrix where already computed (aligned with them)."""
    candidates = np.asarray(candidates)
    finite = np.isfinite(scores)
    candidates, scores = candidates[finite], np.asarray(scores, dtype=np.float64)[finite]
    if similarity is not None:
        similarity = np.asarray(similarity)[np.ix_(finite, finite)]
    k = min(k, len(candidates))
    if diversity <= 0 or k <= 1:
        return candidates[np.argsort(-scores, kind="stable")][:k]
    span = scores.max() - scores.min()
    rel = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
    sim = similarity if similarity is not None else cosine_matrix(item_vectors[candidates])
    picked: list[int] = []
    max_sim = np.zeros(len(candidates))
    available = np.ones(len(candidates), dtype=bool)
    for _ in range(k):
        value = (1 - diversity) * rel - diversity * max_sim
        value[~available] = -np.inf
        best = int(np.argmax(value))
        picked.append(best)
        available[best] = False
        max_sim = np.maximum(max_sim, sim[best])
    return candidates[picked]
