"""Re-ranking for batches of ``avrec recommend`` requests: each request's ``rerank``,
``diversity`` and ``debias`` (or the command's defaults), checked by the one validation of
:func:`avrec.rerank.apply.check_options`.

A request to re-rank is scored like any other, to a candidate pool of :data:`POOL` items (at
least twice ``k``); the pool is re-ranked to ``k`` with the item vectors of the model's content
part (else the catalog's genres), the catalog's genres and the request's history (calibration)
and the training popularity (debias). Explanations are made for the items finally shown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from avrec import metrics as M
from avrec.models.base import Recommender
from avrec.models.capabilities import content_part
from avrec.models.requests import Request, run_requests
from avrec.rerank.apply import RerankOptionError, RerankOptions, check_options, rerank
from avrec.rerank.rules import CompiledRules, apply_rules, with_reason

#: candidates scored for a request that is re-ranked (at least ``2 k``)
POOL = 100


def request_options(
    requests: Sequence[Request], default: RerankOptions, source: str = "request"
) -> list[RerankOptions]:
    """Each request's settings: its own fields where given, else ``default``; the first bad
    value raises :class:`RerankOptionError` naming its line (``source``: the file)."""
    out = []
    for n, req in enumerate(requests, start=1):
        where = f"{source}:{req.line}" if req.line else f"{source} {n}"
        try:
            out.append(
                check_options(
                    default.kind if req.rerank is None else req.rerank,
                    default.diversity if req.diversity is None else req.diversity,
                    default.debias if req.debias is None else req.debias,
                )
            )
        except RerankOptionError as exc:
            raise RerankOptionError(f"{where}: {exc}") from None
    return out


class _CatalogSignals:
    """What re-ranking needs of a model: item vectors, genre distributions, popularity."""

    def __init__(self, model: Recommender):
        from avrec.fusion.features import genre_matrix

        _, item_vocab, train = model.fitted_parts()
        n_items = len(item_vocab)
        catalog = model.catalog
        genres = (
            genre_matrix(catalog)
            if catalog is not None and len(catalog) == n_items
            else np.zeros((n_items, 1), dtype=np.float32)
        )
        part = content_part(model)
        vectors = None if part is None else np.asarray(part.vectors)
        self.vectors = vectors if vectors is not None and len(vectors) == n_items else genres
        self.genres = M.item_genre_distribution(genres)
        self.popularity = np.asarray((train > 0).sum(axis=0)).ravel().astype(np.float64)


def rerank_requests(
    model: Recommender,
    requests: list[Request],
    options: Sequence[RerankOptions],
    k: int,
    explain: bool = True,
    rules: CompiledRules | None = None,
    via: Any = None,
) -> list[dict]:
    """:func:`avrec.models.requests.run_requests` (``via``: as there), each list re-ranked
    by its options and
    ``rules`` (:mod:`avrec.rerank.rules`: the filters limit the candidates the model ranks;
    boosts, caps and pins apply to the pool; an explanation names the rule that moved an
    item; a pinned item the model did not put in the pool carries the pool's lowest score)."""
    ruled = rules is not None and not rules.empty
    if not ruled and not any(o.active for o in options):
        return run_requests(model, requests, k, explain, via)
    user_vocab, item_vocab, _ = model.fitted_parts()
    if rules is not None and rules.n_items != len(item_vocab):
        raise RerankOptionError(
            f"the rules were compiled for {rules.n_items} items, the model has {len(item_vocab)}"
        )
    pool = min(len(item_vocab), max(POOL, 2 * k, rules.depth if rules is not None else 0))
    allowed = rules.allowed() if ruled and rules is not None else None
    asked = _filtered(requests, item_vocab.ids, allowed) if allowed is not None else requests
    records = run_requests(model, asked, pool, explain=False, via=via)
    users = user_vocab.lookup([r.user_id or "" for r in requests])
    hist = model.history_matrix(users, [r.history for r in requests])
    signals = _CatalogSignals(model)
    picked: list[np.ndarray] = []
    reasons: list[list[str | None]] = []
    for n, (rec, opts) in enumerate(zip(records, options, strict=True)):
        cand = item_vocab.lookup(rec["items"])
        scores = np.asarray(rec["scores"], dtype=np.float64)
        history = hist[n].indices
        order = _diversity(opts, cand, signals, history)
        if ruled and rules is not None:
            seen = history if requests[n].exclude_seen else ()
            out = apply_rules(rules, cand, scores, k, exclude=seen, order=order)
            low = float(scores.min()) if len(scores) else 0.0
            rec["items"] = [str(i) for i in item_vocab.ids[out.items]]
            rec["scores"] = [float(scores[p]) if p >= 0 else low for p in out.pool]
            picked.append(out.items)
            reasons.append(out.reasons)
            continue
        chosen = order(np.arange(len(cand)), scores, k) if order else np.arange(min(k, len(cand)))
        rec["items"] = [rec["items"][i] for i in chosen]
        rec["scores"] = [rec["scores"][i] for i in chosen]
        picked.append(cand[chosen])
        reasons.append([None] * len(chosen))
    if explain:
        queries = [r.query for r in requests] if any(r.query for r in requests) else None
        for rec, sentences, why in zip(
            records, model.explain_batch(users, hist, picked, queries), reasons, strict=True
        ):
            rec["explanations"] = [with_reason(s, r) for s, r in zip(sentences, why, strict=True)]
    return records


def _filtered(requests: list[Request], ids: np.ndarray, allowed: np.ndarray) -> list[Request]:
    """The requests with their candidates limited to the items the rules allow."""
    every = [str(i) for i in ids[allowed]]
    out = []
    for req in requests:
        if req.candidates is None:
            out.append(req.model_copy(update={"candidates": every}))
        else:
            keep = set(every)
            out.append(
                req.model_copy(update={"candidates": [c for c in req.candidates if c in keep]})
            )
    return out


def _diversity(opts: RerankOptions, cand: np.ndarray, signals: _CatalogSignals, history):
    """The request's re-ranking as an ordering of positions in ``cand`` (None: the score
    order): the first ``depth`` of them, by default all (the rules take the list from it)."""
    if not opts.active:
        return None
    target = M.genre_distribution(history, signals.genres)

    def order(pos: np.ndarray, scores: np.ndarray, depth: int | None = None) -> np.ndarray:
        items = cand[pos]
        chosen = rerank(
            np.arange(len(pos)),
            scores,
            len(pos) if depth is None else depth,
            kind=opts.kind,
            diversity=opts.diversity,
            debias=opts.debias,
            item_vectors=signals.vectors[items],
            item_genres=signals.genres[items],
            target=target,
            popularity=signals.popularity[items],
        )
        return np.asarray(pos)[np.asarray(chosen, dtype=np.int64)]

    return order


#: requests per Dask task in :func:`rerank_requests_on`
CHUNK = 1000
#: models loaded in a worker process, by folder and manifest time (reused across tasks)
_LOADED: dict[tuple[str, int], Recommender] = {}


def _worker_model(model_dir: str) -> Recommender:
    from pathlib import Path

    from avrec.models.base import MANIFEST

    key = (model_dir, (Path(model_dir) / MANIFEST).stat().st_mtime_ns)
    if key not in _LOADED:
        _LOADED.clear()  # one model per worker: a new version replaces the old one
        _LOADED[key] = Recommender.load(model_dir)
    return _LOADED[key]


def answer_chunk(
    model_dir: str,
    requests: list[Request],
    options: list[RerankOptions],
    k: int,
    explain: bool,
    rules: CompiledRules | None = None,
) -> list[dict]:
    """:func:`rerank_requests` for one chunk of requests, with the model at ``model_dir``
    loaded once per worker process: the Dask task of :func:`rerank_requests_on`."""
    return rerank_requests(_worker_model(model_dir), requests, options, k, explain, rules)


def rerank_requests_on(
    client,
    model_dir: str,
    requests: list[Request],
    options: Sequence[RerankOptions],
    k: int,
    explain: bool = True,
    rules: CompiledRules | None = None,
    chunk: int = CHUNK,
) -> list[dict]:
    """:func:`rerank_requests` as Dask tasks of ``chunk`` requests each (``client``:
    :func:`avrec.cluster.dask_client`); every worker loads the model from ``model_dir``, which
    must be readable at the same path on every machine. The answers come back in request
    order and equal the in-process ones (each request is answered on its own)."""
    futures = [
        client.submit(
            answer_chunk,
            model_dir,
            requests[start : start + chunk],
            list(options[start : start + chunk]),
            k,
            explain,
            rules,
            pure=False,
        )
        for start in range(0, len(requests), chunk)
    ]
    return [record for future in futures for record in future.result()]
