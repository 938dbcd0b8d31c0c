"""Hybrid, the default model: EASE's collaborative item-item weights (with content side
information and rating weights), a Mult-VAE beside them, a prior for short histories, cold items
placed through their content, and natural-language requests.

- An item without training interactions gets an EASE column from a learned content -> EASE
  ridge map (models.coldmap), mixed with the similarity-weighted columns of its ``neighbors``
  nearest warm items in the pretrained text space; its row likewise from the neighbours.
- Where enough of the catalog is cold, a LightGBM ranker trained on simulated cold start
  (models.coldrank) re-ranks the cold items per user.
- Short histories lean on co-occurrence counts and a first-items ridge map (models.prefix),
  fading out as the history grows; the VAE's weight grows with it (``vae_ramp``).
- A request text is matched by the content model and blended with the history's scores.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from avrec.models.arrays import csr_row
from avrec.models.base import ModelConfig, Recommender, TrainData
from avrec.models.coldmap import propagate_to_cold
from avrec.models.content import Content, ContentConfig
from avrec.models.ease import ease_weights, rating_factors, side_features
from avrec.models.hybrid_explain import contribution_parts, row_contributions
from avrec.models.memory import require_dense
from avrec.models.vae import grow_items


class HybridConfig(ModelConfig):
    l2: float = 500.0
    #: EASE extensions (models.ease): denoising emphasis and content side information
    #: (genres, director/cast, text vectors); tuned on ml-100k msr seed 0, checked on seeds 1-2
    ease_dropout: float = 0.5
    side_weight: float = 50.0
    neighbors: int = 50
    #: sharpening of neighbour similarities (softmax temperature over cosine)
    temperature: float = 0.2
    #: zero-shot content term; 0 by default since the side information inside EASE carries the
    #: content (ml-100k msr 0.4929 -> 0.4953 and cold items 0.394 -> 0.404 without it)
    content_weight: float = 0.0
    query_encoder: str | None = "text-multi"
    query_weight: float = 0.7
    #: history items weigh exp(-(recency rank - 1) / recency_tau); None: all equal
    recency_tau: float | None = 5.0
    #: weight of the recency-weighted history against the plain one
    recency_mix: float = 0.0
    #: cold items' columns: share of the learned content->EASE ridge map (models.coldmap)
    #: against the neighbour propagation (0: neighbours only)
    cold_ridge: float = 0.7
    cold_ridge_l2: float = 10.0
    #: short histories lean on raw co-occurrence counts ("people who chose these also chose",
    #: popularity-aware): weight * exp(-(history length - 1) / shrink), in units of the
    #: user's collaborative score spread (fades out as the history grows)
    prior_weight: float = 50.0
    prior_shrink: float = 3.0
    #: learned ranker for the cold items (models.coldrank), fitted when at least this share of
    #: the catalog has no training interactions (0 turns it off; needs lightgbm)
    cold_rank_share: float = 0.05
    cold_rank_folds: int = 5
    cold_rank_trees: int = 100
    #: the ranker refits this model once per fold and keeps items x cold-items similarity
    #: matrices, so it is skipped for larger catalogs
    cold_rank_max_items: int = 5000
    #: short histories also get a ridge map from the training users' first ``short_prefix``
    #: items to all their items (models.prefix), with the same fade; 0 turns it off, and it is
    #: skipped for catalogs over ``short_max_items`` (an items x items solve) or without times
    short_prefix: int = 3
    short_l2: float = 150.0
    short_max_items: int = 20_000
    #: explicit ratings, where the data has them, weigh each interaction by
    #: ``1 + rating_weight * (rating - mean rating) / 2`` in EASE's input and in the history at
    #: scoring time (a well-liked film says more about a user than one they disliked); 0: off.
    #: ml-100k msr seeds 0-2: 0.4920 -> 0.4954 at 0.25-0.3 (0.15: 0.4942, 0.5: 0.4917)
    rating_weight: float = 0.3
    #: a Mult-VAE (models.vae) beside EASE: each user's scores become ``z(hybrid) +
    #: vae_weight * z(vae)`` over the items with training interactions (per-user z-scores; items
    #: without interactions, which the VAE cannot place, get ``(1 + vae_weight) * z(hybrid)``);
    #: 0 turns it off; ``vae``: the VAE's settings (models.vae.VAEConfig). ml-100k msr seeds
    #: 0-2 (with rating_weight 0.3): 0.4954 -> 0.5029 at 4 (2: 0.501, 3: 0.503, 6: 0.504)
    vae_weight: float = 4.0
    #: the VAE's weight grows linearly from 0 at ``vae_ramp[0]`` history items to full at
    #: ``vae_ramp[1]`` (short histories are the co-occurrence prior's: ml-100k cold users with
    #: 3 items drop 0.549 -> 0.499 with the full weight)
    vae_ramp: tuple[int, int] = (3, 15)
    vae: dict = Field(default_factory=dict)


#: fit's peak memory per items x items cell (EASE's weights before and after the cold items'
#: propagation, the short-history map and the cold columns' ridge map side by side; measured
#: by models.memory.PeakMemory: 17.7 on ml-latest-small, where its random split leaves 30% of
#: the items cold)
PEAK_BYTES_PER_CELL = 19.0

#: rows whose short-history prior weight is below this skip it (about 75 or more history items
#: with the default prior_weight and prior_shrink)
PRIOR_CUTOFF = 1e-9


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=1, keepdims=True)
    return (x - x.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)


class Hybrid(Recommender):
    name = "hybrid"
    Config = HybridConfig
    content_aware = True
    #: image/video/audio vectors: similarity features of the cold-item ranker (models.coldrank)
    reads_media = True

    def _fit(self, data: TrainData) -> None:
        c = self.config
        require_dense(self.name, data.matrix.shape[1], PEAK_BYTES_PER_CELL)
        self.content = Content(ContentConfig(query_encoder=c.query_encoder,
                                             query_weight=c.query_weight, seed=c.seed))
        self.content.fit(data)
        self.rating_factor = rating_factors(data, c.rating_weight)
        x = (data.matrix > 0).astype(np.float64)
        if self.rating_factor is not None:
            x = x.multiply(self.rating_factor.astype(np.float64)).tocsr()
        ease = ease_weights(x, c.l2, c.ease_dropout,
                            side_features(data, self.content.vectors), c.side_weight)
        counts = np.asarray((data.matrix > 0).sum(axis=0)).ravel()
        warm = counts > 0
        logc = np.log1p(counts).astype(np.float32)
        self.prior = (logc - logc.mean()) / max(float(logc.std()), 1e-9)
        self.weights = propagate_to_cold(ease, self.content.vectors, warm,
                                         c.neighbors, c.temperature)
        self.short = None
        if c.short_prefix > 0 and data.recency is not None and len(self.item_vocab) <= c.short_max_items:
            from avrec.models.prefix import prefix_weights

            self.short = prefix_weights(data.matrix, data.recency, c.short_prefix, c.short_l2)
        if c.cold_ridge > 0 and (~warm).any() and warm.sum() > 1:
            from avrec.models.coldmap import cold_features, ridge_cold_columns

            feats = cold_features(data.items, self.content.vectors, data.item_features.get("genres"))
            ridge = ridge_cold_columns(ease, feats, warm, c.cold_ridge_l2)
            near = self.weights[:, ~warm]
            scale = max(float(near.std()), 1e-12) / max(float(ridge.std()), 1e-12)
            self.weights[:, ~warm] = (1 - c.cold_ridge) * near + c.cold_ridge * scale * ridge
        self.vae_params = None
        if c.vae_weight > 0 and warm.sum() > 1:
            from avrec.models.vae import VAEConfig, train_multvae

            self.vae_params = train_multvae(data.matrix, VAEConfig(**{"seed": c.seed, **c.vae}),
                                            self.time_capped_)
            self.vae_params["warm"] = warm.copy()
        self.cold_ranker, self.cold_signals = None, None
        if (0 < c.cold_rank_share <= (~warm).mean() and warm.sum() >= 2 * c.cold_rank_folds
                and len(warm) <= c.cold_rank_max_items):
            self._fit_cold_ranker(data, np.flatnonzero(~warm))

    def _fit_cold_ranker(self, data: TrainData, cold: np.ndarray) -> None:
        """models.coldrank: simulated cold start over the warm items with sub-models like this
        one (without their own ranker), then the item signals of the real cold items."""
        from avrec.models.coldrank import fit_for

        sub_config = self.config.model_copy(update={"cold_rank_share": 0.0, "query_encoder": None,
                                                     "vae_weight": 0.0})
        c = self.config
        self.cold_ranker, self.cold_signals = fit_for(lambda view: Hybrid(sub_config).fit(view), data,
                                                      self.content.vectors, cold, c.cold_rank_folds,
                                                      c.cold_rank_trees, c.seed)

    def explain(self, history: sp.csr_matrix, items: np.ndarray, query: str | None = None,
                user: int = -1, contrib: np.ndarray | None = None) -> list[str]:
        """As :meth:`Recommender.explain`; items ranked by the cold ranker are explained by
        the ranker's own per-feature contributions (SHAP values of the booster)."""
        out = super().explain(history, items, query, user, contrib)
        if getattr(self, "cold_ranker", None) is None or (query and query.strip()):
            return out
        from avrec.models.coldrank import explain_cold

        return explain_cold(self, history, items, user, out)

    def score(self, users: np.ndarray, histories: sp.csr_matrix,
              queries: Sequence[str | None] | None = None) -> np.ndarray:
        h = self.history_weights(histories, users)
        collab = np.asarray(h @ self.weights, dtype=np.float32)
        memo = {"sd_c": np.maximum(collab.std(axis=1), 1e-9)}
        if getattr(self, "cold_ranker", None) is not None:
            from avrec.models.coldrank import rerank

            collab = rerank(self.cold_ranker, self.cold_signals, users, histories, collab)
        scores = collab
        if self.config.content_weight > 0:
            content = self.content.score(users, histories, None)
            spread = collab.std(axis=1, keepdims=True) / np.maximum(content.std(axis=1, keepdims=True), 1e-6)
            scores = collab + self.config.content_weight * spread * content
        if self.config.prior_weight > 0:
            n_hist = np.diff(histories.indptr).astype(np.float32)
            fade = self.config.prior_weight * np.exp(-np.maximum(n_hist - 1, 0) / self.config.prior_shrink)
            # the prior has faded out of long histories (PRIOR_CUTOFF: far below float32
            # resolution of the scores); only the other rows pay for the co-occurrence products
            rows = np.flatnonzero(fade > PRIOR_CUTOFF)
            if len(rows):
                sub = histories[rows] if len(rows) < len(fade) else histories
                sd = collab[rows].std(axis=1, keepdims=True)
                prior = self.cooccurrence(sub)
                if self.short is not None:
                    prior = prior + _zscore(np.asarray((sub > 0).astype(np.float32) @ self.short))
                scores[rows] += (fade[rows, None] * np.where(sd > 0, sd, 1.0)) * prior
        if getattr(self, "vae_params", None) is not None:
            scores = self._with_vae(scores, histories, memo)
        # what explain_batch needs of this batch, kept for the same histories object (the
        # explanation of a recommend call follows its scoring with the same batch)
        self._last_batch = (weakref.ref(histories), np.array(users, copy=True), memo)
        if queries is not None and any(queries):
            q_scores, has = self.content.query_scores(queries)
            has_hist = np.diff(histories.indptr) > 0
            for n in np.flatnonzero(has):
                q = q_scores[n]
                if has_hist[n]:
                    z = (scores[n] - scores[n].mean()) / (scores[n].std() + 1e-9)
                    zq = (q - q.mean()) / (q.std() + 1e-9)
                    w = self.config.query_weight
                    scores[n] = w * zq + (1 - w) * z
                else:
                    scores[n] = q
        return scores

    @property
    def vae_warm(self) -> np.ndarray:
        """Items the VAE saw in training (the others get the hybrid's score alone)."""
        return self.vae_params["warm"].astype(bool)

    def _vae_parts(self, histories: sp.csr_matrix, pre: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The VAE's logits, their per-row mean and spread over the VAE's warm items
        (``pre``: the histories' :func:`models.vae.encoder_state`, when already computed)."""
        from avrec.models.vae import decode, logits

        v = logits(self.vae_params, histories) if pre is None else decode(self.vae_params, pre)
        warm = self.vae_warm
        mu = v[:, warm].mean(axis=1, keepdims=True)
        sd = v[:, warm].std(axis=1, keepdims=True)
        return v, mu, np.where(sd > 0, sd, 1.0)

    def vae_weights(self, histories: sp.csr_matrix) -> np.ndarray:
        """``[n, 1]``: the VAE's weight for each history (config ``vae_weight``, ``vae_ramp``)."""
        lo, hi = self.config.vae_ramp
        n = np.diff(histories.indptr).astype(np.float32)
        ramp = np.clip((n - lo) / max(hi - lo, 1), 0.0, 1.0)
        return (self.config.vae_weight * ramp)[:, None]

    def _with_vae(self, scores: np.ndarray, histories: sp.csr_matrix,
                  memo: dict | None = None) -> np.ndarray:
        from avrec.models.vae import encoder_state

        w = self.vae_weights(histories)
        zs = _zscore(scores)
        pre, inv = encoder_state(self.vae_params, histories)
        v, mu, sd = self._vae_parts(histories, pre)
        if memo is not None:
            memo.update(pre=pre, inv=inv, sd_v=sd[:, 0], a=w[:, 0])
        warm = self.vae_warm
        out = (1.0 + w) * zs
        out[:, warm] = zs[:, warm] + w * (v[:, warm] - mu) / sd
        return out

    def cooccurrence(self, histories: sp.csr_matrix) -> np.ndarray:
        """Per-row z-scored co-occurrence counts of each item with the history's items (an
        empty history: item popularity, z-scored)."""
        x = (self.train_matrix > 0).astype(np.float32)
        h = (histories > 0).astype(np.float32)
        co = np.asarray(((h @ x.T) @ x).todense(), dtype=np.float32)
        if h.nnz:  # a history item does not co-occur with itself
            co -= np.asarray(h.multiply(np.asarray(x.sum(axis=0))).todense(), dtype=np.float32)
        empty = np.diff(h.indptr) == 0
        co[empty] = self.prior
        sd = co.std(axis=1, keepdims=True)
        return (co - co.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)

    def history_weights(self, histories: sp.csr_matrix,
                        users: np.ndarray | None = None) -> sp.csr_matrix:
        """Each history item's weight: a mix of 1 and a decay with its recency rank, times
        the user's rating factor for it where the training data has one (``users``: training
        user indices, -1 for unknown users)."""
        h = sp.csr_matrix(histories, dtype=np.float32, copy=True)
        if self.config.recency_tau:
            m = self.config.recency_mix
            h.data = (1 - m) + m * np.exp(-(h.data - 1.0) / self.config.recency_tau)
        else:
            h.data = np.ones_like(h.data)
        factor = getattr(self, "rating_factor", None)
        if factor is not None and users is not None and h.nnz:
            users = np.asarray(users)
            known = (users >= 0) & (users < factor.shape[0])
            extra = factor[np.where(known, users, 0)].tocsr()
            extra.data = extra.data - 1.0  # factor - 1 on the user's rated training pairs
            extra = (sp.diags(known.astype(np.float32)) @ extra).tocsr()
            extra.eliminate_zeros()
            extra.resize(h.shape)  # the catalog may have grown since (add_items)
            h = (h + h.multiply(extra)).tocsr()
        return h

    def contributions(self, history: sp.csr_matrix, items: np.ndarray,
                      user: int = -1) -> np.ndarray:
        parts = contribution_parts(self, history[:1], np.array([user]))
        return row_contributions(self, parts, 0, history.indices, np.asarray(items))

    def explain_batch(self, users: np.ndarray, histories: sp.csr_matrix,
                      items: list[np.ndarray], queries: Sequence[str | None] | None = None
                      ) -> list[list[str]]:
        parts = contribution_parts(self, histories, users)
        out = []
        for n, row_items in enumerate(items):
            idx = histories.indices[histories.indptr[n]:histories.indptr[n + 1]]
            contrib = row_contributions(self, parts, n, idx, np.asarray(row_items)) if len(idx) else None
            out.append(self.explain(csr_row(histories, n), row_items, queries[n] if queries else None,
                                    int(users[n]), contrib=contrib))
        return out

    def add_items(self, items) -> list[str]:
        new = self._extend_catalog(items)
        if new.empty:
            return []
        self.content.item_vocab, self.content.catalog = self.item_vocab, self.catalog
        self.content.append_vectors(new)
        n_old, n_new = self.weights.shape[0], len(self.item_vocab)
        grown = np.zeros((n_new, n_new), dtype=np.float32)
        grown[:n_old, :n_old] = self.weights
        self.prior = np.concatenate([self.prior, np.full(n_new - n_old, self.prior.min(), np.float32)])
        if getattr(self, "vae_params", None) is not None:  # the VAE cannot place new items
            self.vae_params = grow_items(self.vae_params, n_new - n_old)
        if self.short is not None:  # new items: no first-choice evidence either way
            short = np.zeros((n_new, n_new), dtype=np.float32)
            short[:n_old, :n_old] = self.short
            self.short = short
        warm = np.asarray((self.train_matrix > 0).sum(axis=0)).ravel() > 0
        self.weights = propagate_to_cold(grown, self.content.vectors, warm,
                                          self.config.neighbors, self.config.temperature)
        return list(new["item_id"])

    def _state(self) -> dict[str, np.ndarray]:
        short = {"short": self.short} if self.short is not None else {}
        if getattr(self, "cold_ranker", None) is not None:
            model = self.cold_ranker.model_to_string().encode()
            short["cold_ranker"] = np.frombuffer(model, np.uint8)
            short.update({f"coldsig_{k}": v for k, v in self.cold_signals.items()})
        if getattr(self, "vae_params", None) is not None:
            short.update({f"vae_{k}": v for k, v in self.vae_params.items()})
        f = getattr(self, "rating_factor", None)
        if f is not None:
            short.update(rf_data=f.data, rf_indices=f.indices, rf_indptr=f.indptr,
                         rf_shape=np.array(f.shape))
        return {"weights": self.weights, "prior": self.prior, **short,
                **{f"content_{k}": v for k, v in self.content._state().items()}}

    def _set_state(self, state, path) -> None:
        self.weights = state["weights"]
        self.prior = state.get("prior", np.zeros(len(self.weights), np.float32))
        self.cold_ranker, self.cold_signals = None, None
        if "cold_ranker" in state:
            import lightgbm as lgb

            self.cold_ranker = lgb.Booster(model_str=state["cold_ranker"].tobytes().decode())
            self.cold_signals = {k.removeprefix("coldsig_"): v for k, v in state.items()
                                 if k.startswith("coldsig_")}
        self.short = state.get("short")
        vae = {k.removeprefix("vae_"): v for k, v in state.items() if k.startswith("vae_")}
        self.vae_params = vae or None
        self.rating_factor = None
        if "rf_data" in state:
            self.rating_factor = sp.csr_matrix(
                (state["rf_data"], state["rf_indices"], state["rf_indptr"]), shape=tuple(state["rf_shape"]))
        self.content = Content(ContentConfig(query_encoder=self.config.query_encoder,
                                             query_weight=self.config.query_weight))
        self.content.item_vocab, self.content.user_vocab = self.item_vocab, self.user_vocab
        self.content._set_state({k.removeprefix("content_"): v for k, v in state.items()
                                 if k.startswith("content_")}, path)
