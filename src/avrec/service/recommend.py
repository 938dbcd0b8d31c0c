"""The service's recommendation path: online state, filters, negative feedback, explanations.

Two ways to retrieve, same post-processing:
- ``model``: the model scores the catalog from the user's online history (any model), or,
  with the retrieval cascade (``retrieval = "cascade"``, or ``auto`` on large catalogs), only
  the candidates of avrec.index.cascade, the same code as ``avrec recommend --cascade``;
- ``index``: the user's online vector (kept in place by each event) searches the vector index,
  seen items are dropped, filters applied on an over-fetched list (exact scan of the filtered
  subset when too few survive). Used for large catalogs where full scoring is too slow.
"""

from __future__ import annotations

import numpy as np

from avrec.feedback.online import UserState
from avrec.rerank.apply import RerankOptions
from avrec.rerank.rules import CompiledRules, with_reason
from avrec.service.state import ServiceState

NEGATIVE_PENALTY = 0.6
#: candidates a re-ranked list is chosen from (at least ``k``)
POOL = 100


def recommend(
    state: ServiceState,
    user_id: str | None,
    history: list[str] | None,
    query: str | None,
    k: int,
    kind: str | None = None,
    language: str | None = None,
    explain: bool = True,
    model_user: str | None = None,
    exclude_seen: bool = True,
    options: RerankOptions | None = None,
    rules: CompiledRules | None = None,
) -> list[dict]:
    """``model_user``: the ID the model is asked about (None: only the history counts).
    ``exclude_seen=False`` lets history items come back (rejected items never do).
    ``options``: re-ranking (diversity, calibration, debias) of a pool of at least
    :data:`POOL` items down to ``k``. ``rules``: the business rules (``rerank.rules``): their
    filters limit what is retrieved, the rest applies to the pool (after the re-ranking), and
    an explanation names the rule that moved an item; a pinned item from outside the pool
    carries the pool's lowest score."""
    online = state.user_snapshot(user_id) if user_id is not None else None
    hist = list(history) if history else list(online.history) if online is not None else []
    negatives = list(online.negatives) if online is not None else []
    reranked = options is not None and options.active
    depth = (
        max(k, POOL, rules.depth if rules is not None else 0)
        if reranked or rules is not None
        else k
    )
    mask = rules.allowed() if rules is not None else None
    from_index = state.use_index and not (query and query.strip())
    if from_index:
        if history or online is None:
            online = UserState(history=hist, negatives=negatives)
            for item in hist:
                online.shift("vector", state.item_vector(item), +1)
        items, scores, expl = _from_index(state, online, depth, kind, language, exclude_seen, mask)
    else:
        items, scores, expl = _from_model(
            state,
            hist,
            negatives,
            query,
            depth,
            kind,
            language,
            explain,
            model_user,
            exclude_seen,
            mask,
        )
    reasons: list[str | None] | None = None
    if rules is not None and items:
        excluded = [*negatives, *(hist if exclude_seen else [])]
        shown, pool, reasons = state.items.ruled(rules, items, scores, k, options, hist, excluded)
        low = float(np.min(scores))
        scores = np.array([scores[p] if p >= 0 else low for p in pool], dtype=np.float64)
        expl = [expl[p] if p >= 0 else None for p in pool]
        items = shown
    elif reranked and items:
        order = state.items.rerank(items, scores, k, options, hist)
        items, scores, expl = [items[i] for i in order], scores[order], [expl[i] for i in order]
    if explain and from_index:  # the model path explains its own lists
        told = state.items.explain_by_history(hist, items[:k])
        expl = [*told, *[None] * (len(items) - len(told))]
    if explain and reasons is not None:
        expl = [with_reason(e, r) for e, r in zip(expl, reasons, strict=True)]
    return [
        _row(state, item, score, why)
        for item, score, why in list(zip(items, scores, expl, strict=True))[:k]
    ]


def _from_model(
    state, hist, negatives, query, k, kind, language, explain, model_user, exclude_seen, mask=None
):
    depth = k + len(negatives) + (3 * k if negatives else 0)
    cands = state.items.allowed(kind, language, mask)
    with state.lock:
        via = state.cascade
        recs = (via if via is not None else state.model).recommend(
            [model_user],
            depth,
            histories=[hist],
            candidates=[cands] if cands is not None else None,
            queries=[query] if query else None,
            explain=explain,
            exclude_seen=exclude_seen,
        )
    items, scores = recs.items[0], np.asarray(recs.scores[0], dtype=np.float64)
    expl = recs.explanations[0] if recs.explanations else [None] * len(items)
    if negatives:
        items, scores, expl = _push_down(state, items, scores, expl, negatives)
    return items, scores, expl


def _from_index(state, online: UserState, k, kind, language, exclude_seen=True, mask=None):
    """Items nearest the user's vector; explained by :func:`recommend` once the list is
    final."""
    query = online.query_vector()
    if query is None:
        return [], np.zeros(0), []
    dropped = (*online.history, *online.negatives) if exclude_seen else online.negatives
    depth = k + (3 * k if online.negatives else 0)
    items, scores = state.items.nearest(query, depth, dropped, kind, language, mask)
    expl: list[str | None] = [None] * len(items)
    if online.negatives:
        items, scores, expl = _push_down(state, items, scores, expl, online.negatives)
    return items, scores, expl


def _row(state, item, score, why) -> dict:
    return {"item_id": item, "score": float(score), "explanation": why, **state.items.brief(item)}


def _push_down(state, items, scores, expl, negatives):
    """Drop disliked/skipped items and lower items similar to them (content similarity)."""
    rejected = set(negatives)
    keep = [n for n, i in enumerate(items) if i not in rejected]
    items = [items[n] for n in keep]
    scores, expl = np.asarray(scores)[keep], [expl[n] for n in keep]
    sim = state.items.max_similarity(items, negatives)
    if sim is None:
        return items, scores, expl
    span = scores.max() - scores.min() or 1.0
    adjusted = (scores - scores.min()) / span - NEGATIVE_PENALTY * np.clip(sim, 0, None)
    order = np.argsort(-adjusted, kind="stable")
    return [items[n] for n in order], adjusted[order], [expl[n] for n in order]
