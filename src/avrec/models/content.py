"""Zero-shot content matching: a user's history (or a natural-language request) against the
items' pretrained text vectors. Works for items nobody has interacted with.

Item vectors: all-MiniLM-L6-v2 of each item's text (English) for history matching, and
multilingual-e5-small passages for requests in any language it reads (Chinese included).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from avrec.models.base import ModelConfig, Recommender, TrainData

#: request vectors kept per content model (cleared when full)
QUERY_MEMO = 4096


class ContentConfig(ModelConfig):
    #: encoder of item text for history matching
    encoder: str = "text-en"
    #: encoder for natural-language requests (None: requests not supported)
    query_encoder: str | None = "text-multi"
    #: weight of the request against the history when a request has both
    query_weight: float = 0.7
    #: history matching: an item scores the power mean (this exponent) of its positive cosine
    #: similarities to the history items, so one close match outweighs many loose ones; 1 or
    #: less: the cosine to the history's mean vector (docs/benchmarks.md, "Settings behind the
    #: defaults")
    sharpness: float = 8.0


#: similarity entries (history items x catalog block) computed at once by :func:`history_match`
MATCH_BUDGET = 1 << 24


def user_profiles(histories: sp.csr_matrix, vectors: np.ndarray) -> np.ndarray:
    """Mean of the history items' vectors, L2-normalised (zero for an empty history)."""
    h = (histories > 0).astype(np.float32)
    prof = np.asarray(h @ vectors, dtype=np.float32)
    norms = np.linalg.norm(prof, axis=1, keepdims=True)
    return prof / np.where(norms > 0, norms, 1.0)


def history_match(histories: sp.csr_matrix, vectors: np.ndarray, power: float) -> np.ndarray:
    """``[n_rows, n_items]``: per row, each item's power mean (exponent ``power``) of its
    positive cosine similarities to the row's history items (zero for an empty history).
    The similarities of the batch's distinct history items are computed once, over blocks of
    the catalog of about :data:`MATCH_BUDGET` entries."""
    h = sp.csr_matrix((histories > 0).astype(np.float32))
    n_items = vectors.shape[0]
    out = np.zeros((h.shape[0], n_items), np.float32)
    cols = np.unique(h.indices)
    if not len(cols):
        return out
    local = sp.csr_matrix(
        (h.data, np.searchsorted(cols, h.indices), h.indptr), shape=(h.shape[0], len(cols))
    )
    step = max(1, MATCH_BUDGET // len(cols))
    for start in range(0, n_items, step):
        sim = np.maximum(vectors[cols] @ vectors[start : start + step].T, 0.0) ** power
        out[:, start : start + step] = np.asarray(local @ sim)
    out /= np.maximum(np.diff(h.indptr), 1)[:, None]
    return out ** (1.0 / power)


class Content(Recommender):
    name = "content"
    Config = ContentConfig
    config: ContentConfig
    content_aware = True

    def _fit(self, data: TrainData) -> None:
        from avrec.encoders.pipeline import encode_item_texts
        from avrec.encoders.registry import get_encoder

        # the features' text vectors where they come from this encoder, else encoded here
        vectors = (
            data.item_features.get("text") if data.text_encoder == self.config.encoder else None
        )
        if vectors is None or vectors.shape[1] != get_encoder(self.config.encoder).dim:
            vectors = encode_item_texts(data.items, self.config.encoder)
        self.vectors = np.asarray(vectors, dtype=np.float32)
        if not self.config.query_encoder:
            self.query_vectors = None
        elif self._shared_query_space():
            self.query_vectors = self.vectors
        else:
            self.query_vectors = encode_item_texts(data.items, self.config.query_encoder)

    def _shared_query_space(self) -> bool:
        """Whether requests are read by the catalog's own encoder: one array serves both
        (kept, saved and searched once)."""
        return self.config.query_encoder == self.config.encoder

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        from avrec.encoders.registry import get_encoder

        if self.query_vectors is None or self.config.query_encoder is None:
            raise ValueError("this content model was trained without a request encoder")
        # recent requests are kept (explanations cite the similarity to the request that the
        # scores were computed from, and services see the same requests again)
        memo = self.__dict__.setdefault("_query_memo", {})
        found = {}
        for q in dict.fromkeys(queries):
            v = memo.get(q)
            if v is not None:
                found[q] = v
        todo = [q for q in dict.fromkeys(queries) if q not in found]
        if todo:
            enc = get_encoder(self.config.query_encoder)
            encode = getattr(enc, "encode_queries", enc.encode)
            new = dict(zip(todo, np.asarray(encode(todo), dtype=np.float32), strict=True))
            found.update(new)
            if len(memo) + len(new) > QUERY_MEMO:
                memo.clear()
            memo.update(new)
        return (
            np.stack([found[q] for q in queries])
            if len(queries)
            else np.zeros((0, self.query_vectors.shape[1]), np.float32)
        )

    def query_scores(self, queries: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """(scores [n, n_items], mask of rows that had a request)."""
        has = np.array([bool(q and q.strip()) for q in queries], dtype=bool)
        out = np.zeros((len(queries), len(self.vectors)), dtype=np.float32)
        if has.any():
            q = self.encode_queries([q for q in queries if q and q.strip()])
            assert self.query_vectors is not None  # encode_queries raised otherwise
            out[has] = q @ self.query_vectors.T
        return out, has

    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        if self.config.sharpness > 1:
            scores = history_match(histories, self.vectors, self.config.sharpness)
        else:
            scores = user_profiles(histories, self.vectors) @ self.vectors.T
        if queries is not None and any(queries):
            q_scores, has = self.query_scores(queries)
            has_hist = np.diff(histories.indptr) > 0
            w = np.where(has_hist, self.config.query_weight, 1.0)[:, None]
            scores[has] = w[has] * q_scores[has] + (1 - w[has]) * scores[has]
        return scores.astype(np.float32)

    def contributions(
        self, history: sp.csr_matrix, items: np.ndarray, user: int = -1
    ) -> np.ndarray:
        hv = self.vectors[history.indices]
        sim = self.vectors[items] @ hv.T
        power = self.config.sharpness
        if power <= 1:
            return sim / (np.linalg.norm(hv.sum(axis=0)) or 1.0)
        # each history item's share of the power mean, in units of the score
        terms = np.maximum(sim, 0.0) ** power
        total = terms.sum(axis=1, keepdims=True)
        score = (total / len(hv)) ** (1.0 / power)
        return terms / np.where(total > 0, total, 1.0) * score

    def add_items(self, items) -> list[str]:
        new = self._extend_catalog(items)
        if not new.empty:
            self.append_vectors(new)
        return list(new["item_id"])

    def append_vectors(self, new) -> None:
        """Encode new items' text and append their vectors (vocabulary grown by the caller)."""
        from avrec.encoders.pipeline import encode_item_texts

        self.vectors = np.vstack([self.vectors, encode_item_texts(new, self.config.encoder)])
        if self.query_vectors is not None and self._shared_query_space():
            self.query_vectors = self.vectors
        elif self.query_vectors is not None and self.config.query_encoder is not None:
            self.query_vectors = np.vstack(
                [self.query_vectors, encode_item_texts(new, self.config.query_encoder)]
            )

    def state_arrays(self) -> dict[str, np.ndarray]:
        state = {"vectors": self.vectors}
        if self.query_vectors is not None and self.query_vectors is not self.vectors:
            state["query_vectors"] = self.query_vectors
        return state

    def load_state_arrays(self, state, path) -> None:
        self.vectors = state["vectors"]
        self.query_vectors = state.get("query_vectors")
        if self.query_vectors is None and self.config.query_encoder and self._shared_query_space():
            self.query_vectors = self.vectors
