"""Learned hybrid: candidates from the content-aware hybrid (EASE + content, cold items
propagated), re-ranked by LightGBM LambdaRank over features of several models.

Training (all inside ``fit``, on the training data only):

1. hold out a random ``validation_fraction`` of each user's interactions (users with at least
   ``min_user_items``);
2. fit the base models (hybrid, item-kNN, ALS, content similarity) on the rest, take each
   validation user's top ``n_candidates`` from the hybrid, and describe each (user, candidate)
   pair by the models' scores, per-user ranks and z-scores, item popularity and history length;
3. fit a LambdaRank booster whose labels are the held-out items (early stopping on a part of
   the validation users);
4. refit the base models on all the training data; at scoring time the booster re-orders each
   user's top candidates, the rest keep the hybrid's order below them.

Requests with a natural-language query are scored by the hybrid alone; explanations use the
hybrid's additive decomposition (the ranker re-orders, it does not add terms of its own).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from avrec.models.base import ModelConfig, Recommender, TrainData
from avrec.models.scaling import row_moments, zscore_rows
from avrec.models.validation import holdout

if TYPE_CHECKING:
    from avrec.models.baselines.factorization import ALS
    from avrec.models.baselines.itemknn import ItemKNN
    from avrec.models.hybrid.model import Hybrid

PARTS = ("hybrid", "itemknn", "als")


class RankerConfig(ModelConfig):
    n_candidates: int = 100
    validation_fraction: float = 0.25
    min_user_items: int = 4
    #: settings of the base models
    hybrid: dict = Field(default_factory=lambda: {"query_encoder": "text-multi"})
    itemknn: dict = Field(default_factory=lambda: {"neighbors": 100, "shrink": 10.0})
    als: dict = Field(default_factory=lambda: {"factors": 64, "iterations": 15})
    n_estimators: int = 400
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 40


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Per-row rank of each column (0 = best)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(
        ranks, order, np.arange(scores.shape[1])[None, :].repeat(len(scores), 0), axis=1
    )
    return ranks


class Ranker(Recommender):
    name = "hybrid-ltr"
    Config = RankerConfig
    config: RankerConfig
    content_aware = True

    # ---- parts ------------------------------------------------------------------------
    def _fit_parts(
        self, data: TrainData, chosen: dict[str, Recommender] | None = None
    ) -> dict[str, Recommender]:
        """The base models fitted on ``data``. With ``chosen`` (the parts fitted on the
        ranker's training view), each part starts from the configuration that part settled on,
        so settings a model chooses for itself in ``fit`` on validation data (ALS's
        regularization) are not chosen a second time."""
        from avrec.models.registry import create_model

        c = self.config
        return {
            name: create_model(
                name,
                chosen[name].settled_config()
                if chosen is not None
                else {**getattr(c, name), "seed": c.seed},
            ).fit(data)
            for name in PARTS
        }

    def _features(
        self,
        parts: dict[str, Recommender],
        users: np.ndarray,
        histories: sp.csr_matrix,
        pop: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(candidate indices [n, c], features [n, c, f], hybrid scores [n, n_items])."""
        hyb = cast("Hybrid", parts["hybrid"])
        main = hyb.score(users, histories, None)
        blocked = main.copy()
        r, col = histories.nonzero()
        blocked[r, col] = -np.inf
        k = min(self.config.n_candidates, main.shape[1])
        cand = np.argpartition(-blocked, k - 1, axis=1)[:, :k]
        content = hyb.content.score(users, histories, None)
        blocks = [
            main,
            content,
            parts["itemknn"].score(users, histories),
            parts["als"].score(users, histories),
        ]
        n_hist = np.diff(histories.indptr).astype(np.float32)
        hist_pop = np.asarray((histories > 0).astype(np.float32) @ pop).ravel() / np.maximum(
            n_hist, 1
        )
        feats = []
        for s in blocks:
            s = np.where(np.isfinite(s), s, 0.0).astype(np.float32)
            mu, sd = row_moments(s, eps=1e-9)
            s_c = np.take_along_axis(s, cand, axis=1)
            rk = np.take_along_axis(_ranks(np.where(np.isinf(blocked), -np.inf, s)), cand, axis=1)
            feats += [(s_c - mu) / sd, np.log1p(rk).astype(np.float32)]
        feats += [np.log1p(pop[cand]) - np.log1p(hist_pop)[:, None]]
        return cand, np.stack(feats, axis=2).astype(np.float32), main

    # ---- learning ---------------------------------------------------------------------
    def _fit(self, data: TrainData) -> None:
        import lightgbm as lgb

        c = self.config
        sub, val = holdout(data, c.validation_fraction, c.min_user_items, c.seed)
        parts = self._fit_parts(sub)
        pop = np.asarray((sub.matrix > 0).sum(axis=0)).ravel().astype(np.float32)
        users = np.flatnonzero(np.diff(val.indptr) > 0)
        hist = parts["hybrid"].history_matrix(users)
        cand, feats, _ = self._features(parts, users, hist, pop)
        labels = np.take_along_axis(val[users].toarray(), cand, axis=1).astype(np.float32)
        useful = labels.sum(axis=1) > 0
        rng = np.random.default_rng(c.seed)
        is_eval = rng.random(len(users)) < 0.2
        train_rows, eval_rows = np.flatnonzero(useful & ~is_eval), np.flatnonzero(useful & is_eval)
        n_c, n_f = cand.shape[1], feats.shape[2]
        ranker = lgb.LGBMRanker(
            objective="lambdarank",
            n_estimators=c.n_estimators,
            learning_rate=c.learning_rate,
            num_leaves=c.num_leaves,
            min_child_samples=c.min_child_samples,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            random_state=c.seed,
            n_jobs=1,
            verbose=-1,
        )
        ranker.fit(
            feats[train_rows].reshape(-1, n_f),
            labels[train_rows].ravel(),
            group=[n_c] * len(train_rows),
            eval_X=(feats[eval_rows].reshape(-1, n_f),),
            eval_y=(labels[eval_rows].ravel(),),
            eval_group=[[n_c] * len(eval_rows)],
            eval_at=[10],
            callbacks=[lgb.early_stopping(30, verbose=False)],
        )
        self.booster = ranker.booster_
        self.parts = self._fit_parts(data, chosen=parts)
        self.time_capped_ = [
            f"{name} ({when}): {note}"
            for when, fitted in (("validation fit", parts), ("final fit", self.parts))
            for name, part in fitted.items()
            for note in part.time_capped_
        ]
        self.popularity = np.asarray((data.matrix > 0).sum(axis=0)).ravel().astype(np.float32)

    # ---- scoring ----------------------------------------------------------------------
    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        histories = histories.tocsr()
        cand, feats, main = self._features(self.parts, users, histories, self.popularity)
        pred = np.asarray(self.booster.predict(feats.reshape(-1, feats.shape[2]), num_threads=1))
        pred = pred.reshape(cand.shape).astype(np.float32)
        # non-candidates keep the hybrid's order, strictly below every candidate
        z = zscore_rows(main, 1e-9)
        floor = pred.min(axis=1, keepdims=True) - 1.0
        out = floor + np.tanh(z / 10.0) - 1.0
        np.put_along_axis(out, cand, pred, axis=1)
        if queries is not None and any(queries):
            has = np.array([bool(q and q.strip()) for q in queries])
            if has.any():
                out[has] = self.parts["hybrid"].score(
                    users[has], histories[has], [q for q in queries if q and q.strip()]
                )
        return out.astype(np.float32)

    def masked_scores(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        *,
        exclude: sp.csr_matrix | None = None,
        candidates: np.ndarray | None = None,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        if candidates is None:
            return super().masked_scores(users, histories, exclude=exclude, queries=queries)
        # a restricted candidate set (e.g. only cold items): the hybrid orders it
        hyb = self.parts["hybrid"]
        return hyb.masked_scores(
            users, histories, exclude=exclude, candidates=candidates, queries=queries
        )

    def contributions(
        self, history: sp.csr_matrix, items: np.ndarray, user: int = -1
    ) -> np.ndarray | None:
        return self.parts["hybrid"].contributions(history, items, user)

    @property
    def content(self):
        """The content part (request encoding, explanations of requests)."""
        return self.parts["hybrid"].content

    def add_items(self, items) -> list[str]:
        new = self._extend_catalog(items)
        if new.empty:
            return []
        added = self.parts["hybrid"].add_items(new)
        n = len(self.fitted_parts()[1])
        knn = cast("ItemKNN", self.parts["itemknn"])
        s = knn.similarity.tocoo()
        knn.similarity = sp.csr_matrix((s.data, (s.row, s.col)), shape=(n, n))
        als = cast("ALS", self.parts["als"])
        grow = n - len(als.item_factors)
        als.grow_items(n)
        for part in (knn, als):
            part.item_vocab, part.catalog = self.item_vocab, self.catalog
            part.train_matrix = self.train_matrix
            part.train_recency = self.train_recency
        self.popularity = np.concatenate([self.popularity, np.zeros(grow, np.float32)])
        return added

    # ---- persistence ------------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity}

    def _save_extra(self, path: Path) -> None:
        for name, part in self.parts.items():
            part.save(path / "parts" / name)
        (path / "ranker.txt").write_text(self.booster.model_to_string())
        (path / "parts" / "index.json").write_text(json.dumps(list(self.parts)))

    def load_state_arrays(self, state, path) -> None:
        import lightgbm as lgb

        self.popularity = state["popularity"]
        names = json.loads((path / "parts" / "index.json").read_text())
        self.parts = {name: Recommender.load(path / "parts" / name) for name in names}
        self.booster = lgb.Booster(model_str=(path / "ranker.txt").read_text())
