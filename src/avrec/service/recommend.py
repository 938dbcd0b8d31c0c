"""The service's recommendation path: online history, filters, negative feedback, explanations."""

from __future__ import annotations

import numpy as np

from avrec.data.dataset import split_multi
from avrec.service.state import ServiceState

NEGATIVE_PENALTY = 0.6


def _candidates(state: ServiceState, kind: str | None, language: str | None) -> list[str] | None:
    if not kind and not language:
        return None
    cat = state.catalog
    mask = np.ones(len(cat), dtype=bool)
    if kind:
        mask &= (cat.get("kind") == kind).to_numpy() if "kind" in cat else False
    if language:
        mask &= (cat.get("language") == language).to_numpy() if "language" in cat else False
    return list(cat["item_id"][mask])


def recommend(state: ServiceState, user_id: str | None, history: list[str] | None,
              query: str | None, k: int, kind: str | None = None, language: str | None = None,
              explain: bool = True, model_user: str | None = None) -> list[dict]:
    """``model_user``: the ID the model is asked about (None: only the history counts)."""
    negatives: list[str] = []
    if user_id is not None:
        online = state.user_state(user_id)
        hist = list(history) if history else list(online.history)
        negatives = list(online.negatives)
    else:
        hist = list(history or [])
    model = state.model
    depth = k + len(negatives) + (3 * k if negatives else 0)
    cands = _candidates(state, kind, language)
    with state.lock:
        recs = model.recommend([model_user], depth, histories=[hist],
                               candidates=[cands] if cands is not None else None,
                               queries=[query] if query else None, explain=explain)
    items, scores = recs.items[0], np.asarray(recs.scores[0], dtype=np.float64)
    expl = recs.explanations[0] if recs.explanations else [None] * len(items)
    if negatives:
        items, scores, expl = _push_down(state, items, scores, expl, negatives)
    rows = []
    for item, score, why in list(zip(items, scores, expl, strict=True))[:k]:
        pos = state.position.get(item)
        row = state.catalog.iloc[pos] if pos is not None else {}
        rows.append({"item_id": item, "title": row.get("title") if pos is not None else None,
                     "score": float(score), "explanation": why,
                     "genres": split_multi(row.get("genres")) if pos is not None else [],
                     "kind": row.get("kind") if pos is not None else None})
    return rows


def _push_down(state, items, scores, expl, negatives):
    """Drop disliked/skipped items and lower items similar to them (content similarity)."""
    keep = [n for n, i in enumerate(items) if i not in set(negatives)]
    items = [items[n] for n in keep]
    scores, expl = scores[keep], [expl[n] for n in keep]
    vectors = state.content_vectors()
    if vectors is None or not items:
        return items, scores, expl
    pos = [state.position[i] for i in items]
    neg = [state.position[i] for i in negatives if i in state.position]
    if not neg:
        return items, scores, expl
    sim = (vectors[pos] @ vectors[neg].T).max(axis=1)
    span = scores.max() - scores.min() or 1.0
    adjusted = (scores - scores.min()) / span - NEGATIVE_PENALTY * np.clip(sim, 0, None)
    order = np.argsort(-adjusted, kind="stable")
    return [items[n] for n in order], adjusted[order], [expl[n] for n in order]
