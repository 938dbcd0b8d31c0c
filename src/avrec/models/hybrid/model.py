"""Hybrid, the default model: a pipeline of named parts (models.hybrid.parts) -- content
vectors, a collaborative backbone (EASE with content side information by default), cold items
placed through their content, a prior for short histories, a Mult-VAE beside the backbone, a
learned ranker of the cold items, and natural-language requests.

- An item without training interactions gets a backbone column from a learned content ->
  backbone ridge map (models.coldmap), mixed with the similarity-weighted columns of its
  nearest warm items in the pretrained text space; its row likewise from the neighbours.
- Where enough of the catalog is cold, a LightGBM ranker trained on simulated cold start
  (models.coldrank) re-ranks the cold items per user.
- Short histories lean on co-occurrence counts and a first-items ridge map (models.prefix),
  fading out as the history grows; the VAE's weight grows with it.
- A request text is matched by the content part; a LightGBM ranker learned from simulated
  requests (models.hybrid.requestrank) orders its candidates by request similarity, taste and
  quality priors (a fixed z-score blend where none was learned).

Each part has its own config (``HybridConfig.backbone``, ``.vae``, ...) and its own sub-folder
when saved (``parts/<name>/``); swapping a part, e.g. ``backbone.kind``, is a config change.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
import scipy.sparse as sp

from avrec.errors import AvrecError
from avrec.models.arrays import csr_row, dense_product
from avrec.models.base import Recommender, TrainData
from avrec.models.capabilities import Unlearned
from avrec.models.content import Content, ContentConfig
from avrec.models.hybrid.config import CONFIG_SCHEMA, HybridConfig, text_encoders
from avrec.models.hybrid.explain import contribution_parts, row_contributions
from avrec.models.hybrid.parts import (
    PART_CONFIG,
    Backbone,
    ColdItems,
    ColdRanker,
    ShortHistory,
    VAEBlend,
    _fitted,
    load_part,
    save_part,
)
from avrec.models.hybrid.recency import Recency, with_rating_factor
from avrec.models.hybrid.requestrank import RequestRanker, explain_shares
from avrec.models.memory import SCALABLE_MODELS, require_dense
from avrec.models.scaling import blend_request

#: fit's peak memory per items x items cell (the backbone's weights before and after the cold
#: items' propagation, the short-history map and the cold columns' ridge map side by side;
#: measured by models.memory.PeakMemory: 17.7 on ml-latest-small, where its random split
#: leaves 30% of the items cold)
PEAK_BYTES_PER_CELL = 19.0

PARTS_DIR = "parts"

#: one INFO line per part of :meth:`Hybrid.fit` with its seconds (where a large fit's time goes)
log = logging.getLogger(__name__)


class Hybrid(Recommender):
    name = "hybrid"
    Config = HybridConfig
    config: HybridConfig
    content_aware = True
    #: image/video/audio vectors: similarity features of the cold-item ranker (models.coldrank)
    reads_media = True

    # ---- the parts ------------------------------------------------------------------
    def text_encoder(self, n_items: int) -> str:
        """The encoder of a catalog of ``n_items`` items' text (``content.encoder``)."""
        return text_encoders(self.config.content, n_items)[0]

    def _new_parts(self, n_items: int | None = None, content: dict | None = None) -> None:
        """Fresh parts; the content part with the text encoders of ``n_items`` items
        (config.text_encoders), or with a saved content part's config ``content``."""
        c = self.config
        if content is None:
            encoder, query = text_encoders(c.content, n_items or 0)
            content = {
                "encoder": encoder,
                "query_encoder": query,
                "query_weight": c.request.weight,
                "seed": c.seed,
            }
        self.content = Content(ContentConfig(**content))
        self.backbone = Backbone(c.backbone)
        self.cold_items = ColdItems(c.cold_items)
        self.short_history = ShortHistory(c.short_history)
        self.recency = Recency(c.recency)
        self.vae: VAEBlend | None = VAEBlend(c.vae) if c.vae.weight > 0 else None
        self.cold_rank: ColdRanker | None = None
        self.request_rank: RequestRanker | None = None

    def parts(self) -> dict[str, object]:
        """The fitted parts by name, in pipeline order (parts a config turned off, or that the
        data did not call for, are absent)."""
        out = {
            "content": self.content,
            "backbone": self.backbone,
            "cold_items": self.cold_items,
            "short_history": self.short_history,
            "recency": self.recency,
        }
        if self.vae is not None:
            out["vae"] = self.vae
        if self.cold_rank is not None:
            out["cold_ranker"] = self.cold_rank
        if self.request_rank is not None:
            out["request_ranker"] = self.request_rank
        return out

    def _fit(self, data: TrainData) -> None:
        c = self.config
        if c.backbone.kind != "sparse":  # the sparse backbone never holds items x items dense
            require_dense(
                self.name,
                data.matrix.shape[1],
                PEAK_BYTES_PER_CELL,
                ('hybrid with {"backbone": {"kind": "sparse"}}', *SCALABLE_MODELS),
            )
        self._new_parts(data.matrix.shape[1])
        clock = _PartClock(data.matrix.shape)
        try:
            self._fit_parts(data, clock)
        finally:
            clock.close()

    def _fit_parts(self, data: TrainData, clock: _PartClock) -> None:
        c = self.config
        self.content.fit(data)
        text = self.content.vectors
        clock.done("content")
        raw = self.backbone.fit(data, text)
        clock.done("backbone")
        counts = np.asarray((data.matrix > 0).sum(axis=0)).ravel()
        warm = counts > 0
        if self.backbone.inverse_diag_ is not None:  # kept for exact updates (unlearn)
            self.backbone.raw_cold_ = np.asarray(raw)[:, ~warm].copy()
        self.backbone.weights_ = self.cold_items.fit(raw, data, text, warm, c.backbone.neighbors)
        clock.done("cold_items")
        self.short_history.fit(data, counts)
        clock.done("short_history")
        self.recency.fit(data, text, c.backbone, c.seed)
        clock.done("recency")
        if self.vae is not None and warm.sum() > 1 and len(warm) <= c.vae.max_items:
            self.vae.fit(data.matrix, warm, c.seed, self.time_capped_)
            clock.done("vae")
        else:
            self.vae = None
        ranker = ColdRanker(c.cold_ranker)
        if ranker.wanted(warm):
            # sub-models like this one, without their own ranker, VAE or requests
            sub = c.with_parts(
                cold_ranker={"share": 0.0},
                content={"query_encoder": None},
                vae={"weight": 0.0},
                recency=self._settled_recency(),
            )
            ranker.fit(
                lambda view: Hybrid(sub).fit(view), data, text, np.flatnonzero(~warm), c.seed
            )
            self.cold_rank = ranker
            clock.done("cold_ranker")
        if (
            c.request.learned
            and self.content.query_vectors is not None
            and len(warm) <= c.request.max_items
        ):
            self._fit_request_ranker(data)
            clock.done("request_ranker")

    def _fit_request_ranker(self, data: TrainData) -> None:
        """The learned request blend; its taste comes from sub-models like this one (without
        the VAE, the rankers or requests) fitted without the simulated requests' answers."""
        from avrec.encoders.pipeline import encode_queries_cached

        c = self.config
        sub = c.with_parts(
            cold_ranker={"share": 0.0},
            content={"query_encoder": None},
            vae={"weight": 0.0},
            request={"learned": False},
            recency=self._settled_recency(),
        )
        query_vectors = cast(np.ndarray, self.content.query_vectors)
        encoder = cast(str, self.content.config.query_encoder)
        ranker = RequestRanker(c.request)
        if ranker.fit(
            data,
            lambda view: Hybrid(sub).fit(view),
            lambda texts: encode_queries_cached(texts, encoder) @ query_vectors.T,
            c.seed,
            encode=lambda texts: encode_queries_cached(texts, encoder),
        ):
            self.request_rank = ranker

    def _settled_recency(self) -> dict:
        """The recency part's config with the fitted values fixed (no second validation)."""
        return {"learn": False, "mix": self.recency.mix_, "tau": self.recency.tau_}

    def settled_config(self) -> dict:
        return self.config.with_parts(recency=self._settled_recency()).model_dump()

    # ---- what other modules read --------------------------------------------------------
    @property
    def weights(self) -> np.ndarray | sp.csr_matrix:
        """The backbone's item x item weights (cold items filled in): dense, or CSR for the
        sparse backbone (read them through models.arrays.dense_product / weights_block)."""
        # None only before fit; a property that raised would upset hasattr-based protocol checks
        return cast(np.ndarray | sp.csr_matrix, self.backbone.weights_)

    @property
    def rating_factor(self) -> sp.csr_matrix | None:
        return self.backbone.rating_factor_

    @property
    def vae_params(self) -> dict[str, np.ndarray] | None:
        return None if self.vae is None else self.vae.params_

    @property
    def cold_ranker(self):
        return None if self.cold_rank is None else self.cold_rank.booster_

    @property
    def cold_signals(self) -> dict[str, np.ndarray] | None:
        return None if self.cold_rank is None else self.cold_rank.signals_

    @property
    def vae_warm(self) -> np.ndarray:
        """Items the VAE saw in training (the others get the hybrid's score alone)."""
        return _fitted(self.vae, "VAE").warm

    def vae_parts(
        self, histories: sp.csr_matrix, pre: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _fitted(self.vae, "VAE").parts(histories, pre)

    def vae_weights(self, histories: sp.csr_matrix) -> np.ndarray:
        return _fitted(self.vae, "VAE").weights(histories)

    def cooccurrence(self, histories: sp.csr_matrix) -> np.ndarray:
        return self.short_history.cooccurrence(self.train_matrix, histories)

    # ---- scoring --------------------------------------------------------------------
    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        c = self.config
        h = self.history_weights(histories, users)
        collab = dense_product(h, self.weights)
        memo = {"sd_c": np.maximum(collab.std(axis=1), 1e-9)}
        if self.cold_rank is not None:
            from avrec.models.hybrid.coldrank import rerank

            signals = _fitted(self.cold_rank.signals_, "cold ranker")
            collab = rerank(self.cold_ranker, signals, users, histories, collab)
        scores = collab
        if c.content.weight > 0:
            content = self.content.score(users, histories, None)
            spread = collab.std(axis=1, keepdims=True) / np.maximum(
                content.std(axis=1, keepdims=True), 1e-6
            )
            scores = collab + c.content.weight * spread * content
        if c.short_history.prior_weight > 0:
            self.short_history.add(scores, collab, self.train_matrix, histories)
        if self.vae is not None:
            scores = self.vae.blend(scores, histories, memo)
        # what explain_batch needs of this batch, kept for the same histories object (the
        # explanation of a recommend call follows its scoring with the same batch)
        self._last_batch = (weakref.ref(histories), np.array(users, copy=True), memo)
        if queries is not None and any(queries):
            scores = self._blend_requests(scores, histories, queries, memo)
        return scores

    def cheap_subsets(self) -> bool:
        from avrec.models.hybrid.subsets import can_score

        return can_score(self)

    def subset_state(self):
        """The :class:`~avrec.models.hybrid.subsets.SubsetState` of the fitted arrays as they
        are now (built again after anything replaced them: a warm start, added items)."""
        from avrec.models.hybrid.subsets import SubsetState

        key = (self.backbone.weights_, self.train_matrix, self.content.query_vectors)
        cached = self.__dict__.get("_subset_state")
        if cached is None or any(a is not b for a, b in zip(cached[0], key, strict=True)):
            cached = (key, SubsetState(self))
            self._subset_state = cached
        return cached[1]

    def score_items(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        items: np.ndarray,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        """The scores of ``items`` only (models.hybrid.subsets) where the fitted parts allow
        it (a sparse backbone, no VAE, cold-item ranker or first-items map; a request with the
        learned request ranker is scored whole), else the whole catalog's, picked."""
        from avrec.models.hybrid import subsets

        asked = queries is not None and any(queries)
        if not subsets.can_score(self) or (asked and self.request_rank is not None):
            return super().score_items(users, histories, items, queries)
        return subsets.score_items(self, users, histories, items, queries)

    def _blend_requests(
        self,
        scores: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None],
        memo: dict | None = None,
    ) -> np.ndarray:
        q_scores, has = self.content.query_scores(queries)
        if self.request_rank is not None:
            vectors = None
            if has.any():  # the same requests as query_scores': its memo has their vectors
                asked = self.content.encode_queries([q for q in queries if q and q.strip()])
                vectors = np.zeros((len(queries), asked.shape[1]), np.float32)
                vectors[has] = asked
            return self.request_rank.rank(scores, q_scores, has, histories, memo, vectors)
        has_hist = np.diff(histories.indptr) > 0
        w = self.config.request.weight
        for n in np.flatnonzero(has):
            scores[n] = blend_request(scores[n], q_scores[n], bool(has_hist[n]), w)
        return scores

    def scored_batch(self, histories: sp.csr_matrix, users: np.ndarray) -> dict | None:
        """What the last :meth:`score` kept of its batch (spreads, VAE state), if it scored
        this very ``histories`` object for these ``users``; else None."""
        last = self.__dict__.get("_last_batch")
        if last is not None and last[0]() is histories and np.array_equal(last[1], users):
            return last[2]
        return None

    def history_weights(
        self, histories: sp.csr_matrix, users: np.ndarray | None = None
    ) -> sp.csr_matrix:
        """Each history item's weight: a mix of 1 and a decay with its recency rank (the
        recency part's fitted ``mix_`` and ``tau_``), times the user's rating factor for it
        where the training data has one (``users``: training user indices, -1 for unknown
        users)."""
        h = sp.csr_matrix(histories, dtype=np.float32, copy=True)
        h.data = self.recency.weigh(h.data)
        return with_rating_factor(h, self.rating_factor, users)

    # ---- explanations ---------------------------------------------------------------
    def explain(
        self,
        history: sp.csr_matrix,
        items: np.ndarray,
        query: str | None = None,
        user: int = -1,
        contrib: np.ndarray | None = None,
    ) -> list[str]:
        """As :meth:`Recommender.explain`; items ranked by the cold ranker are explained by
        the ranker's own per-feature contributions (SHAP values of the booster)."""
        out = super().explain(history, items, query, user, contrib)
        if self.cold_rank is None or (query and query.strip()):
            return out
        from avrec.models.hybrid.coldrank import explain_cold

        return explain_cold(self, history, items, user, out)

    def contributions(
        self, history: sp.csr_matrix, items: np.ndarray, user: int = -1
    ) -> np.ndarray:
        parts = contribution_parts(self, history[:1], np.array([user]))
        return row_contributions(self, parts, 0, history.indices, np.asarray(items))

    def explain_batch(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        items: list[np.ndarray],
        queries: Sequence[str | None] | None = None,
    ) -> list[list[str]]:
        parts = contribution_parts(self, histories, users)
        shares = self._request_shares(users, histories, items, queries)
        out = []
        for n, row_items in enumerate(items):
            idx = histories.indices[histories.indptr[n] : histories.indptr[n + 1]]
            contrib = (
                row_contributions(self, parts, n, idx, np.asarray(row_items)) if len(idx) else None
            )
            out.append(
                self.explain(
                    csr_row(histories, n),
                    row_items,
                    queries[n] if queries else None,
                    int(users[n]),
                    contrib=contrib,
                )
            )
            if shares is not None:
                out[-1] = [f"{a}; {b}" if b else a for a, b in zip(out[-1], shares[n], strict=True)]
        return out

    def _request_shares(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        items: list[np.ndarray],
        queries: Sequence[str | None] | None,
    ) -> list[list[str]] | None:
        """Per row, which part (request, taste, popularity and ratings) placed each item, from
        the request ranker's contributions; None without requests or a learned ranker."""
        if self.request_rank is None or not queries or not any(queries):
            return None
        memo = self.scored_batch(histories, users)
        if memo is None or "requests" not in memo:
            self.score(users, histories, queries)  # the ranker's candidates and features
            memo = cast(dict, self.scored_batch(histories, users))
        return explain_shares(self.request_rank.booster_, memo["requests"], items)

    # ---- warm start and forgetting users -------------------------------------------------
    def _warm_update(self, data: TrainData, max_share: float) -> dict | str:
        """The backbone updated with the changed users' rows, the cheap parts refitted, the
        others kept (models.hybrid.warm)."""
        from avrec.models.hybrid.warm import warm_update

        return warm_update(self, data, max_share)

    def unlearn(self, rows: np.ndarray) -> Unlearned:
        """The backbone (kind ease) and the popularity prior as if training users ``rows``
        were absent: the backbone by an exact low-rank update of its EASE solution, the cold
        items' columns and rows filled again from it; the parts trained on users in other
        ways (first-items map, VAE, cold ranker) and, with ``rating_center`` None, the
        rating factors' centre (the mean of everyone's ratings) hold them until the next
        training: they are listed in ``pending``."""
        from avrec.models.baselines.ease_update import update_rows

        c = self.config
        _, _, train = self.fitted_parts()
        keep = np.ones(train.shape[0], dtype=bool)
        keep[rows] = False
        counts_before = np.asarray((train > 0).sum(axis=0)).ravel()
        counts = np.asarray((train[keep] > 0).sum(axis=0)).ravel()
        self.short_history.set_counts(counts)
        arrays = {"parts/short_history/state.npz": {"prior": self.short_history.state()["prior"]}}
        pending = []
        factor = self.rating_factor
        old = train[rows]
        if c.backbone.kind != "ease":
            pending.append(f"backbone (kind {c.backbone.kind})")
        else:
            raw = self.backbone.raw_weights(counts_before > 0)
            x = Backbone.inputs(old, None if factor is None else factor[rows])
            d = _fitted(self.backbone.inverse_diag_, "backbone")
            raw, d = update_rows(
                raw, d, x, sp.csr_matrix(x.shape), c.backbone.dropout, in_place=True
            )
            warm = counts > 0
            view = self._unlearn_view(train[keep])
            self.backbone.inverse_diag_, self.backbone.raw_cold_ = d, raw[:, ~warm].copy()
            self.backbone.weights_ = self.cold_items.fit(
                raw, view, self.content.vectors, warm, c.backbone.neighbors
            )
            arrays["parts/backbone/state.npz"] = {
                "weights": self.backbone.weights_,
                **self.backbone.solution(),
            }
            if factor is not None and c.backbone.rating_center is None and old.nnz:
                pending.append("backbone's rating centre (the mean of all training ratings)")
            lagging = (self.warm_started_ or {}).get("penalty_kept_items")
            if lagging:  # models.hybrid.warm: a warm start kept these items' old penalty
                pending.append(f"backbone's denoising penalty of {lagging} items")
        if self.short_history.short_ is not None:
            pending.append("short_history's first-items map")
        pending += [
            name for name in ("vae", "cold_ranker", "request_ranker") if name in self.parts()
        ]
        if self.recency.learned_:  # a choice from everyone's times (two numbers)
            pending.append("recency's learned weighting")
        return Unlearned(arrays, pending)

    def _unlearn_view(self, train: sp.csr_matrix) -> TrainData:
        """What the cold-items part reads of the training data (the catalog, its genres)."""
        import pandas as pd

        from avrec.fusion.features import genre_matrix

        user_vocab, item_vocab, _ = self.fitted_parts()
        items = self.catalog if self.catalog is not None else pd.DataFrame(
            {"item_id": item_vocab.ids}
        )  # fmt: skip
        genres = {"genres": genre_matrix(items)} if "genres" in items else {}
        return TrainData(items, pd.DataFrame(), user_vocab, item_vocab, train, item_features=genres)

    # ---- growing the catalog ----------------------------------------------------------
    def add_items(self, items) -> list[str]:
        new = self._extend_catalog(items)
        if new.empty:
            return []
        self.content.item_vocab, self.content.catalog = self.item_vocab, self.catalog
        self.content.append_vectors(new)
        _, item_vocab, train_matrix = self.fitted_parts()
        n_old, n_new = self.weights.shape[0], len(item_vocab)
        grown: np.ndarray | sp.csr_matrix
        if sp.issparse(self.weights):
            grown = sp.csr_matrix(self.weights, copy=True)
            grown.resize((n_new, n_new))
        else:
            grown = np.zeros((n_new, n_new), dtype=np.float32)
            grown[:n_old, :n_old] = self.weights
        self.short_history.extend(n_new)
        if self.vae is not None:  # the VAE cannot place new items
            self.vae.extend(n_new - n_old)
        warm = np.asarray((train_matrix > 0).sum(axis=0)).ravel() > 0
        self.backbone.weights_ = self.cold_items.extend(
            grown, self.content.vectors, warm, self.config.backbone.neighbors
        )
        return list(new["item_id"])

    # ---- persistence: one sub-folder per part ---------------------------------------------
    def manifest_extra(self) -> dict:
        return {
            "config_schema": CONFIG_SCHEMA,
            "parts": list(self.parts()),
            "learned": {
                "recency": self.recency.summary(),
                # chosen by the catalog's size where the config leaves them open
                "content": {
                    "encoder": self.content.config.encoder,
                    "query_encoder": self.content.config.query_encoder,
                },
            },
        }

    def _save_extra(self, path: Path) -> None:
        root = path / PARTS_DIR
        save_part(root / "content", self.content.config, self.content.state_arrays())
        save_part(root / "backbone", self.config.backbone, self.backbone.state())
        save_part(root / "cold_items", self.config.cold_items, {})
        save_part(root / "short_history", self.config.short_history, self.short_history.state())
        save_part(root / "recency", self.config.recency, self.recency.state())
        if self.vae is not None:
            save_part(root / "vae", self.config.vae, self.vae.state())
        if self.cold_rank is not None:
            save_part(root / "cold_ranker", self.config.cold_ranker, self.cold_rank.state())
        if self.request_rank is not None:
            save_part(root / "request_ranker", self.config.request, self.request_rank.state())

    def load_state_arrays(self, state: dict[str, np.ndarray], path: Path) -> None:
        root = path / PARTS_DIR
        if not root.is_dir():
            raise AvrecError(
                f"{path}: a hybrid saved by an earlier avrec (one flat state file, "
                f"before config schema {CONFIG_SCHEMA}); retrain it with "
                "`avrec train`"
            )
        content = root / "content" / PART_CONFIG
        self._new_parts(content=json.loads(content.read_text()) if content.is_file() else None)
        _, item_vocab, _ = self.fitted_parts()
        self.content.item_vocab, self.content.user_vocab = self.item_vocab, self.user_vocab
        self.content.load_state_arrays(load_part(root / "content"), path)
        self.backbone.set_state(load_part(root / "backbone"))
        self.short_history.set_state(load_part(root / "short_history"), len(item_vocab))
        self.recency.set_state(load_part(root / "recency"))
        self.vae = None
        if (root / "vae").is_dir():
            self.vae = VAEBlend(self.config.vae)
            self.vae.set_state(load_part(root / "vae"))
        if (root / "cold_ranker").is_dir():
            self.cold_rank = ColdRanker(self.config.cold_ranker)
            self.cold_rank.set_state(load_part(root / "cold_ranker"))
        if (root / "request_ranker").is_dir():
            self.request_rank = RequestRanker(self.config.request)
            self.request_rank.set_state(load_part(root / "request_ranker"))


class _PartClock:
    """Logs each part's seconds as it finishes, with the depth of the fit (0: the model
    itself; 1: the sub-models that its recency validation and rankers fit)."""

    depth = 0

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.level = _PartClock.depth
        _PartClock.depth += 1
        self.last = time.perf_counter()

    def done(self, part: str) -> None:
        now = time.perf_counter()
        log.info(
            "hybrid fit depth %d (%d x %d): %s %.1f s",
            self.level,
            *self.shape,
            part,
            now - self.last,
        )
        self.last = now

    def close(self) -> None:
        _PartClock.depth = self.level
