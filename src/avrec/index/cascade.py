"""Retrieval -> ranking cascade for large catalogs: a few cheap retrievers each propose a fixed
number of items per request, the proposals are merged into one candidate set of
:attr:`CascadeConfig.total` items, and the model ranks those candidates only, with its exact
scores (:meth:`avrec.models.base.Recommender.score_items`).

Retrievers (item positions, best first, seen items left out):

- ``neighbours``: the history's item-item neighbours, ``rank(h @ W)`` over the nonzero entries
  of the sparse product, with ``W`` the model's own sparse backbone weights (sparse-ease, hybrid
  with ``backbone.kind = "sparse"``) or, for other models, cosine co-occurrence neighbours;
- ``vectors``: approximate nearest neighbours (faiss HNSW/IVF, avrec.index) of the mean of the
  history's item vectors among the item vectors (models with content vectors);
- ``query``: the request text's vector among the items' request-side vectors (with a query);
- ``popular``: the most interacted items in training;
- ``fresh``: items without training interactions, newest (last added) first.

Merge: each retriever's first ``budget`` items in the order above, duplicates dropped; the slots
left free (a retriever with fewer items, no query) go to the retrievers' further items, taken
in turn. The result depends only on the model, the requests and the config.

Candidate recall, as reported by benchmarks/bench_cascade.py: for a user with held-out items
``T``, candidate set ``C`` and the full ranking's top-k ``F``, *plain* recall is
``|C ∩ T| / |T|``; recall *of what the full ranking finds* is ``|C ∩ T ∩ F| / |T ∩ F|``
(users with ``T ∩ F`` empty are left out), both averaged over users.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from avrec.models.arrays import top_k
from avrec.models.base import Recommendations, Recommender
from avrec.models.baselines.sparse_ease import binary_rows, rows_product

#: the order of the retrievers in the merge
RETRIEVERS = ("neighbours", "vectors", "query", "popular", "fresh")


class CascadeConfig(BaseModel):
    """Per-retriever budgets (items per request); their sum is the candidate set's size."""

    model_config = ConfigDict(extra="forbid")

    neighbours: int = Field(default=300, ge=0)
    vectors: int = Field(default=100, ge=0)
    query: int = Field(default=50, ge=0)
    popular: int = Field(default=50, ge=0)
    fresh: int = Field(default=0, ge=0)
    #: faiss index of the ``vectors`` and ``query`` retrievers (avrec.index.make_index kinds;
    #: auto: HNSW below ``hnsw_below`` items, IVF from there, whose build takes a minute at a
    #: million items where HNSW's takes several on one core)
    ann: Literal["auto", "hnsw", "ivf", "flat", "exact"] = "auto"
    hnsw_below: int = Field(default=200_000, ge=0)
    #: IVF cells scanned per search (of about sqrt(items)): few, since at a million items this
    #: search is a large share of a request's time (docs/benchmarks.md, "cascade")
    ivf_nprobe: int = Field(default=4, ge=1)
    #: neighbours per item of the co-occurrence graph built for models without sparse weights
    graph_neighbours: int = Field(default=100, ge=1)
    #: catalogs at least this large use the cascade by default (avrec recommend, avrec serve)
    min_items: int = Field(default=50_000, ge=0)

    @property
    def total(self) -> int:
        return self.neighbours + self.vectors + self.query + self.popular + self.fresh


def _ranked_rows(m: sp.csr_matrix, depth: int, drop: list[set[int]]) -> list[np.ndarray]:
    """Per CSR row, the columns of its nonzero entries by decreasing value (ties: lower
    column first), ``drop[row]`` left out, at most ``depth``."""
    out = []
    for r in range(m.shape[0]):
        idx = m.indices[m.indptr[r] : m.indptr[r + 1]]
        val = m.data[m.indptr[r] : m.indptr[r + 1]]
        order = np.lexsort((idx, -val))
        ranked = idx[order]
        if drop[r]:
            ranked = ranked[~np.isin(ranked, list(drop[r]))]
        out.append(ranked[:depth].astype(np.int64))
    return out


def _first(order: np.ndarray, depth: int, drop: set[int]) -> np.ndarray:
    """The first ``depth`` entries of ``order`` not in ``drop``."""
    take = order[: depth + len(drop)]
    if drop:
        take = take[~np.isin(take, list(drop))]
    return take[:depth].astype(np.int64)


def _search(
    index, queries: Sequence[np.ndarray | None], depth: int, drop: list[set[int]]
) -> list[np.ndarray]:
    """Per query row (``None``: no query), the ``depth`` nearest items not in ``drop``."""
    out = [np.zeros(0, np.int64) for _ in drop]
    live = [n for n, q in enumerate(queries) if q is not None]
    vecs = [q for q in queries if q is not None]
    if not live:
        return out
    fetch = depth + max(len(drop[n]) for n in live)
    idx, _ = index.search(np.stack(vecs).astype(np.float32), fetch)
    for row, n in zip(idx, live, strict=True):
        out[n] = _first(row[row >= 0], depth, drop[n])
    return out


class Cascade:
    """A fitted model's retrievers and its exact ranking of their candidates."""

    def __init__(self, model: Recommender, config: CascadeConfig | dict | None = None):
        self.model = model
        self.config = (
            config if isinstance(config, CascadeConfig) else CascadeConfig(**(config or {}))
        )
        _, item_vocab, train = model.fitted_parts()
        self.n_items = len(item_vocab)
        counts = np.asarray((train > 0).sum(axis=0)).ravel()
        counts = np.concatenate([counts, np.zeros(self.n_items - len(counts))])
        self.popular = np.lexsort((np.arange(self.n_items), -counts))
        self.fresh = np.flatnonzero(counts == 0)[::-1]
        self.graph = self._graph(train)
        content = self.content = getattr(model, "content", None)
        vectors = getattr(content, "vectors", getattr(model, "vectors", None))
        self.vectors = None if vectors is None else np.asarray(vectors, np.float32)
        self.vector_index = self._index(self.vectors)
        qv = getattr(content, "query_vectors", None)
        if qv is not None and qv is vectors:  # requests matched in the catalog's own space
            self.query_index = self.vector_index
        else:
            self.query_index = self._index(None if qv is None else np.asarray(qv, np.float32))

    def _graph(self, train: sp.csr_matrix) -> sp.csr_matrix:
        """Items x items CSR whose row ``i`` scores the items related to ``i``."""
        weights = getattr(self.model, "weights", None)
        if weights is not None and sp.issparse(weights):
            return sp.csr_matrix(weights, dtype=np.float32)
        from avrec.models.baselines.sparse_ease import gram_neighbours

        x = sp.csr_matrix((train > 0).astype(np.float64))
        k = max(1, min(self.config.graph_neighbours, x.shape[1] - 1))
        nbrs = gram_neighbours(x, k, by="cosine")
        g = (x.T @ x).tocsr()
        diag = np.sqrt(np.maximum(g.diagonal(), 1e-12))
        rows = np.repeat(np.arange(x.shape[1]), k)
        cols = nbrs.ravel()
        ok = cols >= 0
        rows, cols = rows[ok], cols[ok]
        vals = np.asarray(g[rows, cols]).ravel() / (diag[rows] * diag[cols])
        out = sp.csr_matrix(
            (vals.astype(np.float32), (rows, cols)), shape=(self.n_items, self.n_items)
        )
        return out

    def _index(self, vectors: np.ndarray | None):
        if vectors is None or len(vectors) == 0:
            return None
        from avrec.index.base import make_index

        kind = self.config.ann
        if kind == "auto":
            kind = "hnsw" if len(vectors) < self.config.hnsw_below else "ivf"
        options = {"nprobe": self.config.ivf_nprobe} if kind == "ivf" else {}
        index = make_index(kind, vectors.shape[1], **options)
        index.add(vectors)
        return index

    # ---- retrieval ------------------------------------------------------------------
    def retrieve(
        self,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None,
        drop: list[set[int]],
        depth: int,
    ) -> dict[str, list[np.ndarray]]:
        """Each retriever's ranked items per row (at most ``depth``; ``drop``: per row, items
        never proposed)."""
        n = histories.shape[0]
        h = binary_rows(histories)
        h.resize((n, self.graph.shape[0]))
        out = {"neighbours": _ranked_rows(rows_product(h, self.graph), depth, drop)}
        empty = [np.zeros(0, np.int64) for _ in range(n)]
        out["vectors"] = empty
        if self.vector_index is not None and self.vectors is not None:
            from avrec.models.content import user_profiles

            prof = user_profiles(histories, self.vectors)
            has = np.diff(histories.indptr) > 0
            rows = [p if ok else None for p, ok in zip(prof, has, strict=True)]
            out["vectors"] = _search(self.vector_index, rows, depth, drop)
        out["query"] = empty
        content = self.content
        if self.query_index is not None and content is not None and queries and any(queries):
            live = [q if q and q.strip() else None for q in queries]
            texts = [q for q in live if q is not None]
            if texts:
                enc = content.encode_queries(texts)
                it = iter(enc)
                vecs = [next(it) if q is not None else None for q in live]
                out["query"] = _search(self.query_index, vecs, depth, drop)
        out["popular"] = [_first(self.popular, depth, d) for d in drop]
        out["fresh"] = [_first(self.fresh, depth, d) for d in drop]
        return out

    def candidates(
        self,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
        drop: list[set[int]] | None = None,
    ) -> np.ndarray:
        """``int64 [n, total]``: each row's merged candidates (``-1`` past the end)."""
        n = histories.shape[0]
        drop = drop if drop is not None else [set() for _ in range(n)]
        total = self.config.total
        found = self.retrieve(histories, queries, drop, total)
        budgets = [getattr(self.config, name) for name in RETRIEVERS]
        out = np.full((n, min(total, self.n_items)), -1, np.int64)
        for r in range(n):
            lists = [found[name][r] for name in RETRIEVERS]
            picked = merge(lists, budgets, out.shape[1], self.n_items)
            out[r, : len(picked)] = picked
        return out

    # ---- ranking --------------------------------------------------------------------
    def rank(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        k: int,
        candidates: np.ndarray,
        queries: Sequence[str | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item positions and scores among ``candidates`` (``[n, c]``, ``-1``: none),
        by the model's exact scores; missing places have score ``-inf``."""
        scores = self.model.score_items(users, histories, candidates, queries)
        scores = np.where(candidates >= 0, scores, -np.inf).astype(np.float32)
        scores[~np.isfinite(scores)] = -np.inf
        pos, top = top_k(scores, k)
        return np.take_along_axis(candidates, pos, axis=1), top

    def recommend(
        self,
        user_ids: Sequence[str | None],
        k: int = 10,
        *,
        histories: Sequence[Sequence[str] | None] | None = None,
        candidates: Sequence[Sequence[str] | None] | None = None,
        queries: Sequence[str | None] | None = None,
        exclude_seen: bool | Sequence[bool] = True,
        explain: bool = False,
        batch_size: int = 256,
    ) -> Recommendations:
        """As :meth:`avrec.models.base.Recommender.recommend`, through the cascade; a
        request's own candidate list replaces the retrieved candidates."""
        model = self.model
        user_vocab, item_vocab, _ = model.fitted_parts()
        user_ids = list(user_ids)
        out_items: list[list[str]] = []
        out_scores: list[list[float]] = []
        out_expl: list[list[str]] = []
        for start in range(0, len(user_ids), batch_size):
            stop = min(start + batch_size, len(user_ids))
            users = user_vocab.lookup([u if u is not None else "" for u in user_ids[start:stop]])
            hist = model.history_matrix(users, histories[start:stop] if histories else None)
            flags = (
                np.full(stop - start, bool(exclude_seen))
                if isinstance(exclude_seen, bool)
                else np.asarray(exclude_seen[start:stop], dtype=bool)
            )
            drop = [
                set(hist.indices[hist.indptr[n] : hist.indptr[n + 1]].tolist()) if f else set()
                for n, f in enumerate(flags)
            ]
            q = queries[start:stop] if queries is not None else None
            cand = self.candidates(hist, q, drop)
            given = candidates[start:stop] if candidates is not None else []
            if any(c is not None for c in given):
                rows = [cand[n] for n in range(stop - start)]
                for n, c in enumerate(given):
                    if c is not None:
                        idx = np.unique(item_vocab.lookup(list(c)))
                        rows[n] = idx[(idx >= 0) & ~np.isin(idx, list(drop[n]))]
                width = max(1, max(len(r) for r in rows))
                cand = np.full((stop - start, width), -1, np.int64)
                for n, r in enumerate(rows):
                    r = r[r >= 0]
                    cand[n, : len(r)] = r
            idx, top = self.rank(users, hist, k, cand, q)
            picked = []
            for row_idx, row_scores in zip(idx, top, strict=True):
                keep = np.isfinite(row_scores) & (row_idx >= 0)
                picked.append(row_idx[keep])
                out_items.append([str(i) for i in item_vocab.ids[row_idx[keep]]])
                out_scores.append([float(s) for s in row_scores[keep]])
            if explain:
                out_expl += model.explain_batch(users, hist, picked, q)
        return Recommendations(user_ids, out_items, out_scores, out_expl if explain else None)


def merge(
    lists: Sequence[np.ndarray], budgets: Sequence[int], total: int, n_items: int | None = None
) -> np.ndarray:
    """One candidate list of at most ``total`` items: each list's first ``budget`` items not
    already taken, list after list; then, while slots are free, the lists' further items in
    turn (every list's next item, then the one after, ...), duplicates dropped. ``n_items``:
    one more than the largest item (default: found from the lists)."""
    arrays = [np.asarray(items, np.int64) for items in lists]
    if n_items is None:
        n_items = 1 + max((int(a.max()) for a in arrays if len(a)), default=-1)
    seen = np.zeros(n_items, np.bool_)
    taken, tails, ranks, owners = [], [], [], []
    count = 0
    for n, (items, budget) in enumerate(zip(arrays, budgets, strict=True)):
        new = np.flatnonzero(~seen[items])[: max(0, min(budget, total - count))]
        seen[items[new]] = True
        taken.append(items[new])
        count += len(new)
        rest = items[new[-1] + 1 :] if len(new) else items[budget:]
        tails.append(rest)
        ranks.append(np.arange(len(rest)))
        owners.append(np.full(len(rest), n))
    head = np.concatenate(taken) if taken else np.zeros(0, np.int64)
    free = total - count
    if free <= 0:
        return head
    rest = np.concatenate(tails)
    rest = rest[np.lexsort((np.concatenate(owners), np.concatenate(ranks)))]
    rest = rest[~seen[rest]]
    _, first = np.unique(rest, return_index=True)
    return np.concatenate([head, rest[np.sort(first)][:free]])


def use_cascade(model: Recommender, config: CascadeConfig | None = None) -> bool:
    """Whether the cascade is the default for ``model``: a catalog of at least
    ``config.min_items`` items, and a model that scores a few items for less than the whole
    catalog (:meth:`~avrec.models.base.Recommender.cheap_subsets`; for the others the
    cascade would add retrieval to the full scoring)."""
    config = config or CascadeConfig()
    return model.cheap_subsets() and len(model.fitted_parts()[1]) >= config.min_items
