"""The hybrid's scores of a few items per row, without scoring the whole catalog: what the
retrieval cascade ranks (avrec.index.cascade) at large catalogs.

:meth:`Hybrid.score <avrec.models.hybrid.model.Hybrid.score>` is, per row,
``collab + w * sd(collab) / sd(content) * content + fade * sd(collab) * z(prior)``, where the
spreads and the prior's z-score run over the whole catalog. Here:

- ``collab`` is read at the items from the sparse product ``h @ W`` (exact), and its spread
  over the catalog comes from the product's nonzeros (exact: every other entry is 0);
- the content match and the co-occurrence prior are computed at the items and at a fixed,
  seeded sample of :data:`MOMENT_SAMPLE` (2,048) items; the sample's spread (and the prior's mean)
  stand for the catalog's: exact where the catalog is no larger than the sample, an estimate
  above (bench_cascade.py measures what it changes);
- a request (fixed blend): its z-score is exact (the mean and second moment of the
  request-side vectors), the taste's comes from the sample.

Only a hybrid with a sparse backbone and without the VAE, the cold-item ranker and the
first-items map (large catalogs drop all three) scores this way (:func:`can_score`); the learned
request ranker needs the whole catalog, so rows with a request are then scored whole.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from avrec.models.baselines.sparse_ease import binary_rows, csr_at, rows_product
from avrec.models.hybrid.parts import PRIOR_CUTOFF

#: a fitted avrec.models.hybrid.model.Hybrid (not imported: the model imports this module)
Hybrid = Any

#: items whose content match and prior stand for the catalog's spread (and the prior's mean)
MOMENT_SAMPLE = 2048


def can_score(model: Hybrid) -> bool:
    """Whether :func:`score_items` gives ``model``'s scores (else the whole catalog is scored)."""
    return (
        sp.issparse(model.backbone.weights_)
        and model.vae is None
        and model.cold_rank is None
        and model.short_history.short_ is None
        and (model.config.content.weight <= 0 or model.content.vectors is not None)
    )


class SubsetState:
    """What every call reuses: the moment sample, the training matrix's columns as rows and
    the request-side vectors' moments (built on first use, per fitted model)."""

    def __init__(self, model: Hybrid):
        n_items = model.weights.shape[1]
        if n_items <= MOMENT_SAMPLE:
            self.sample = np.arange(n_items, dtype=np.int64)
        else:
            rng = np.random.default_rng(model.config.seed)
            self.sample = np.sort(rng.choice(n_items, MOMENT_SAMPLE, replace=False))
        train = model.fitted_parts()[2]
        # items x users, binary: the co-occurrence prior's columns (item -> its users)
        self.by_item = binary_rows(train.T.tocsr())
        self.by_item.resize((n_items, train.shape[0]))
        self.counts = np.diff(self.by_item.indptr).astype(np.float32)
        # users x items, binary: each of the history's users adds to all their items
        self.by_user = binary_rows(train, n_items)
        self.n_items = n_items
        self._scratch = threading.local()
        vectors = model.content.vectors
        self.sample_vectors = (
            None if vectors is None else np.asarray(vectors[self.sample], np.float32)
        )
        self.query_mean: np.ndarray | None = None
        self.query_second: np.ndarray | None = None
        qv = model.content.query_vectors
        if qv is not None:
            q = np.asarray(qv, np.float64)
            self.query_mean = q.mean(axis=0)
            self.query_second = q.T @ q / len(q)


def _scratch(state: SubsetState) -> np.ndarray:
    """Per item, this thread's scratch space of :func:`prior_at` (all zeros between calls)."""
    counts = getattr(state._scratch, "counts", None)
    if counts is None:
        counts = state._scratch.counts = np.zeros(state.n_items, np.float32)
    return counts


def match_at(
    histories: sp.csr_matrix,
    vectors: np.ndarray,
    items: np.ndarray,
    sample: np.ndarray,
    power: float,
) -> np.ndarray:
    """``[n, c + s]``: :func:`avrec.models.content.history_match` (power > 1) or the profile's
    cosine (otherwise) of each row's history with its items ``items[n]`` and with the sample
    (``sample``: the sample items' vectors)."""
    from avrec.models.content import user_profiles

    h = binary_rows(histories)
    out = np.zeros((items.shape[0], items.shape[1] + len(sample)), np.float32)
    for r in range(h.shape[0]):
        hist = h.indices[h.indptr[r] : h.indptr[r + 1]]
        if not len(hist):
            continue
        cand = np.concatenate([vectors[items[r]], sample])
        if power > 1:
            sim = np.maximum(cand @ vectors[hist].T, 0.0) ** power
            out[r] = (sim.sum(axis=1) / len(hist)) ** (1.0 / power)
        else:
            out[r] = cand @ user_profiles(h[r], vectors)[0]
    return out


def prior_at(model: Hybrid, state: SubsetState, histories: sp.csr_matrix, items: np.ndarray):
    """``[n, c + s]`` co-occurrence counts of each row's history with its ``items[n]`` and the
    sample (a history item not with itself; an empty history: the popularity prior), as
    :meth:`~avrec.models.hybrid.parts.ShortHistory.cooccurrence` before its z-score: the
    count of an item is the sum over its users of how many history items each has, added up
    from the history's users' rows (a few of them, not the candidates' many)."""
    h = binary_rows(histories, state.by_item.shape[0])
    prior = model.short_history.prior_
    assert prior is not None
    out = np.zeros((items.shape[0], items.shape[1] + len(state.sample)), np.float32)
    for r in range(h.shape[0]):
        hist = h.indices[h.indptr[r] : h.indptr[r + 1]]
        cols = np.concatenate([items[r], state.sample])
        if not len(hist):
            out[r] = prior[cols]
            continue
        users, overlap = np.unique(state.by_item[hist].indices, return_counts=True)
        if not len(users):
            continue
        rows = state.by_user[users]
        co = _scratch(state)  # filled for this history, read, then cleared
        try:
            np.add.at(co, rows.indices, np.repeat(overlap, np.diff(rows.indptr)).astype(np.float32))
            out[r] = co[cols]
        finally:
            co[rows.indices] = 0.0
        own = np.isin(cols, hist)
        out[r, own] -= state.counts[cols[own]]
    return out


def sparse_moments(prod: sp.csr_matrix, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's mean and standard deviation over ``n_cols`` columns (absent entries 0)."""
    s1 = np.asarray(prod.sum(axis=1), np.float64).ravel()
    s2 = np.asarray(prod.multiply(prod).sum(axis=1), np.float64).ravel()
    mu = s1 / n_cols
    return mu, np.sqrt(np.maximum(s2 / n_cols - mu**2, 0.0))


def score_items(
    model: Hybrid,
    users: np.ndarray,
    histories: sp.csr_matrix,
    items: np.ndarray,
    queries: Sequence[str | None] | None = None,
) -> np.ndarray:
    """``float32 [n, c]``: the hybrid's scores of ``items[n]`` (``-1``: none, scored 0)."""
    c = model.config
    state: SubsetState = model.subset_state()
    weights = model.backbone.weights_
    if not sp.isspmatrix_csr(weights):  # a wrapper over a CSR is itself O(nnz): only if needed
        weights = sp.csr_matrix(weights)
    n_items = weights.shape[1]
    items = np.asarray(items, dtype=np.int64)
    n, width = items.shape
    safe = np.maximum(items, 0)
    cols = np.concatenate([safe, np.broadcast_to(state.sample, (n, len(state.sample)))], axis=1)
    prod = rows_product(model.history_weights(histories, users), weights)
    _, sd_c = sparse_moments(prod, n_items)
    collab = csr_at(prod, cols)
    scores = collab.copy()
    if c.content.weight > 0:
        vectors = np.asarray(model.content.vectors, np.float32)
        power = model.content.config.sharpness
        assert state.sample_vectors is not None  # can_score: the content part has vectors
        content = match_at(histories, vectors, safe, state.sample_vectors, power)
        spread = sd_c / np.maximum(content[:, width:].std(axis=1), 1e-6)
        scores += (c.content.weight * spread)[:, None].astype(np.float32) * content
    s = c.short_history
    if s.prior_weight > 0:
        n_hist = np.diff(histories.indptr).astype(np.float32)
        fade = s.prior_weight * np.exp(-np.maximum(n_hist - 1, 0) / s.prior_shrink)
        rows = np.flatnonzero(fade > PRIOR_CUTOFF)
        if len(rows):
            prior = prior_at(model, state, histories[rows], safe[rows])
            mu, sd = prior[:, width:].mean(axis=1), prior[:, width:].std(axis=1)
            z = (prior - mu[:, None]) / np.where(sd > 0, sd, 1.0)[:, None]
            unit = np.where(sd_c[rows] > 0, sd_c[rows], 1.0)
            scores[rows] += (fade[rows] * unit)[:, None].astype(np.float32) * z
    if queries is not None and any(queries):
        scores = _blend_requests(model, state, scores, histories, queries, cols, width)
    out = scores[:, :width]
    return np.where(items >= 0, out, 0.0).astype(np.float32)


def _blend_requests(
    model: Hybrid,
    state: SubsetState,
    scores: np.ndarray,
    histories: sp.csr_matrix,
    queries: Sequence[str | None],
    cols: np.ndarray,
    width: int,
) -> np.ndarray:
    """The fixed request blend (:func:`avrec.models.scaling.blend_request`) at ``cols``."""
    has = np.array([bool(q and q.strip()) for q in queries], dtype=bool)
    qv = model.content.query_vectors
    assert qv is not None and state.query_mean is not None and state.query_second is not None
    asked = model.content.encode_queries([q for q in queries if q and q.strip()])
    has_hist = np.diff(histories.indptr) > 0
    w = model.config.request.weight
    for q_vec, r in zip(asked, np.flatnonzero(has), strict=True):
        req = np.asarray(qv[cols[r]] @ q_vec, np.float32)
        if not has_hist[r]:
            scores[r] = req
            continue
        q64 = np.asarray(q_vec, np.float64)
        mean = float(q64 @ state.query_mean)
        sd = np.sqrt(max(float(q64 @ state.query_second @ q64) - mean**2, 0.0)) + 1e-9
        taste = scores[r, width:]
        t_sd = taste.std() + 1e-9
        scores[r] = w * (req - mean) / sd + (1 - w) * (scores[r] - taste.mean()) / t_sd
    return scores
