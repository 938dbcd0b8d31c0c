"""Matrix factorisation baselines as thin adapters over ``implicit``: ALS and BPR.

Users are folded in from their history when it differs from the training row (new users,
overridden histories), with the exact ALS user step for ALS and a ridge fit for BPR. Both steps
are linear in the history, so a score splits into one term per history item (the explanation),
as implicit's ``AlternatingLeastSquares.explain`` splits it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from avrec.models.base import ModelConfig, Recommender, TrainData

#: users whose holdout chooses ALS's regularization, and score entries computed at once
VALIDATION_USERS = 2000
SCORE_BUDGET = 1 << 24


class ALSConfig(ModelConfig):
    factors: int = 64
    #: None: chosen in ``fit`` from ``regularization_grid`` by NDCG@10 on a holdout of 10% of
    #: each user's training interactions (the best value depends sharply on the data:
    #: docs/benchmarks.md, "Settings behind the defaults"); the chosen value is the fitted
    #: ``ALS.regularization_`` (saved with it)
    regularization: float | None = None
    regularization_grid: tuple[float, ...] = Field(
        (3.0, 6.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0), min_length=1
    )
    alpha: float = 3.0
    iterations: int = 15
    #: iterations of a warm start (``Recommender.warm_start``), from the previous factors
    warm_iterations: int = Field(default=5, ge=1)


class BPRConfig(ModelConfig):
    #: tuned on ml-100k msr (docs/benchmarks.md, "Settings behind the defaults")
    factors: int = 64
    learning_rate: float = 0.003
    regularization: float = 0.01
    iterations: int = 150


class _Factorization(Recommender):
    def _same_as_training(self, users: np.ndarray, histories: sp.csr_matrix) -> np.ndarray:
        same = np.zeros(len(users), dtype=bool)
        _, _, train = self.fitted_parts()
        for n, u in enumerate(users):
            if u < 0:
                continue
            a = train.indices[train.indptr[u] : train.indptr[u + 1]]
            b = histories.indices[histories.indptr[n] : histories.indptr[n + 1]]
            same[n] = len(a) == len(b) and np.array_equal(np.sort(a), np.sort(b))
        return same

    def user_vectors(self, users: np.ndarray, histories: sp.csr_matrix) -> np.ndarray:
        histories = histories.tocsr()
        vecs = np.zeros((len(users), self.item_factors.shape[1]), dtype=np.float32)
        same = self._same_as_training(users, histories)
        vecs[same] = self.user_factors[users[same]]
        for n in np.flatnonzero(~same):
            idx = histories.indices[histories.indptr[n] : histories.indptr[n + 1]]
            if len(idx):
                vecs[n] = self._fold_in(idx)
        return vecs

    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        return self.user_vectors(users, histories) @ self.item_factors.T

    def _user_system(self, y: np.ndarray) -> tuple[np.ndarray, float]:
        """``(A, c)``: the user step for a history whose item factors are ``y`` (float64)
        solves ``A x = c * y.sum(axis=0)``."""
        raise NotImplementedError

    def _fold_in(self, idx: np.ndarray) -> np.ndarray:
        """The user vector of a history (item indices ``idx``) by the model's user step."""
        y = self.item_factors[idx].astype(np.float64)
        a, conf = self._user_system(y)
        return np.linalg.solve(a, conf * y.sum(axis=0)).astype(np.float32)

    def contributions(
        self, history: sp.csr_matrix, items: np.ndarray, user: int = -1
    ) -> np.ndarray | None:
        """``[len(items), len(history.indices)]``: the fold-in score ``y_i' A^-1 (c sum_j y_j)``
        split into its terms ``c y_i' A^-1 y_j``, one per history item ``j``. For ALS this is
        also how a training user's score splits (the user step with the final item factors)."""
        idx = history.indices[history.indptr[0] : history.indptr[1]]
        if not len(idx):
            return None
        y_hist = self.item_factors[idx].astype(np.float64)  # only the rows used: this runs
        y_items = self.item_factors[np.asarray(items)].astype(np.float64)  # once per request
        a, conf = self._user_system(y_hist)
        return (conf * (y_items @ np.linalg.solve(a, y_hist.T))).astype(np.float32)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def load_state_arrays(self, state, path) -> None:
        self.user_factors = state["user_factors"]
        self.item_factors = state["item_factors"]
        self._prepare()

    def grow_items(self, n_items: int) -> None:
        """Zero factors for items appended to the catalog (they score only through other
        parts until retrained)."""
        grow = n_items - len(self.item_factors)
        if grow > 0:
            self.item_factors = np.vstack(
                [self.item_factors, np.zeros((grow, self.item_factors.shape[1]), np.float32)]
            )
            self._prepare()

    def _prepare(self) -> None:
        y = self.item_factors.astype(np.float64)
        self._gram = y.T @ y


class ALS(_Factorization):
    name = "als"
    Config = ALSConfig
    config: ALSConfig

    #: the regularization of the fit: the config's, or the one chosen from its grid
    regularization_: float

    def _fit(self, data: TrainData) -> None:
        reg = self.config.regularization
        self.regularization_ = float(reg if reg is not None else self._select(data))
        self.user_factors, self.item_factors = self._factorize(data.matrix, self.regularization_)
        self._prepare()

    def settled_config(self) -> dict:
        return {**self.config.model_dump(), "regularization": self.regularization_}

    def _warm_update(self, data: TrainData, max_share: float) -> dict | str:
        """A warm start: ``warm_iterations`` ALS iterations on ``data`` from this fit's
        factors (implicit keeps factors set before ``fit``; users new to ``data`` start
        small and random, as a fit starts everyone) with the regularization this fit chose,
        instead of choosing it again and iterating from scratch. Any amount of new data
        (``max_share`` does not apply: the cost is the iterations')."""
        user_vocab, item_vocab, _ = self.fitted_parts()
        if list(item_vocab.ids) != list(data.item_vocab.ids):
            return "the catalog changed"
        rows = user_vocab.lookup(list(data.user_vocab.ids))
        rng = np.random.default_rng(self.config.seed)
        users = rng.random((len(rows), self.config.factors), dtype=np.float32) * 0.01
        users[rows >= 0] = self.user_factors[rows[rows >= 0]]
        self.user_factors, self.item_factors = self._factorize(
            data.matrix, self.regularization_, (users, self.item_factors)
        )
        self._prepare()
        return {
            "users_new": int((rows < 0).sum()),
            "iterations": self.config.warm_iterations,
            "kept": ["regularization_"],
        }

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {**super().state_arrays(), "regularization_": np.array(self.regularization_)}

    def load_state_arrays(self, state, path) -> None:
        # models saved before the fitted attribute existed kept the choice in their config
        saved = state.get("regularization_")
        if saved is None:
            saved = self.config.regularization
        if saved is None:
            raise ValueError("saved ALS model records no regularization")
        self.regularization_ = float(saved)
        super().load_state_arrays(state, path)

    def _factorize(
        self,
        matrix: sp.csr_matrix,
        regularization: float,
        start: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """User and item factors of ``matrix``; ``start``: factors to iterate from (a warm
        start: ``warm_iterations``), else a seeded random start (``iterations``)."""
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        c = self.config
        model = AlternatingLeastSquares(
            factors=c.factors,
            regularization=regularization,
            alpha=c.alpha,
            iterations=c.iterations if start is None else c.warm_iterations,
            random_state=c.seed,
            num_threads=1,
        )
        if start is not None:  # implicit initialises only the factors that are None
            model.user_factors = np.array(start[0], dtype=np.float32)
            model.item_factors = np.array(start[1], dtype=np.float32)
        with threadpool_limits(1, "blas"):
            model.fit((matrix > 0).astype(np.float32), show_progress=False)
        return (
            np.asarray(model.user_factors, dtype=np.float32),
            np.asarray(model.item_factors, dtype=np.float32),
        )

    def _select(self, data: TrainData) -> float:
        """The grid value with the best NDCG@10 on a 10% holdout of each user's items (at
        most ``VALIDATION_USERS`` users, scored in blocks of about ``SCORE_BUDGET`` entries)."""
        from avrec.models.validation import holdout, ndcg_rows

        grid = self.config.regularization_grid
        sub, val = holdout(data, 0.1, 5, self.config.seed)
        rows = np.flatnonzero(np.diff(val.indptr) > 0)
        if len(grid) == 1 or not len(rows):
            return float(grid[len(grid) // 2])
        if len(rows) > VALIDATION_USERS:
            rows = np.sort(
                np.random.default_rng(self.config.seed).choice(
                    rows, VALIDATION_USERS, replace=False
                )
            )
        step = max(1, SCORE_BUDGET // val.shape[1])
        means = []
        for reg in grid:
            users, items = self._factorize(sub.matrix, reg)
            values = [
                ndcg_rows(users[r] @ items.T, sub.matrix[r], val[r])
                for r in (rows[i : i + step] for i in range(0, len(rows), step))
            ]
            means.append(np.concatenate(values).mean())
        return float(grid[int(np.argmax(means))])

    def _user_system(self, y: np.ndarray) -> tuple[np.ndarray, float]:
        """The exact ALS user step (confidence 1 + alpha on the history's items)."""
        conf = 1.0 + self.config.alpha
        a = self._gram + (conf - 1.0) * (y.T @ y) + self.regularization_ * np.eye(y.shape[1])
        return a, conf


class BPR(_Factorization):
    name = "bpr"
    Config = BPRConfig
    config: BPRConfig
    #: explanation for a training user's own history (see :meth:`contributions`)
    unsplit_reason = "ranked by the taste factors learned from your history"

    def _fit(self, data: TrainData) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        c = self.config
        model = BayesianPersonalizedRanking(
            factors=c.factors,
            learning_rate=c.learning_rate,
            regularization=c.regularization,
            iterations=c.iterations,
            random_state=c.seed,
            num_threads=1,
        )
        model.fit((data.matrix > 0).astype(np.float32), show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        self._prepare()

    def _user_system(self, y: np.ndarray) -> tuple[np.ndarray, float]:
        """Ridge fit of the user vector to the history (1 on its items, 0 elsewhere)."""
        return self._gram + np.eye(self._gram.shape[0]), 1.0

    def contributions(
        self, history: sp.csr_matrix, items: np.ndarray, user: int = -1
    ) -> np.ndarray | None:
        """As the base class for folded-in histories; None for a training user's own history,
        whose factors BPR learned by gradient steps that do not split by history item."""
        if self._same_as_training(np.array([user]), history[:1])[0]:
            return None
        return super().contributions(history, items, user)
