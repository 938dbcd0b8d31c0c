"""Rating baselines: the global mean, and global + user + item biases (regularised, fitted by
alternating least squares). Both predict explicit ratings (``predict``) and rank by prediction."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from avrec.models.base import ModelConfig, Recommender, TrainData


class BiasConfig(ModelConfig):
    user_reg: float = 5.0
    item_reg: float = 5.0
    iterations: int = 10
    #: False: only the global mean
    use_biases: bool = True


class Bias(Recommender):
    name = "bias"
    Config = BiasConfig
    config: BiasConfig

    def _fit(self, data: TrainData) -> None:
        if data.ratings is None or data.ratings.nnz == 0:
            raise ValueError("the bias model needs explicit ratings")
        r = data.ratings.tocoo()
        self.mean = float(r.data.mean())
        bu = np.zeros(data.n_users, np.float64)
        bi = np.zeros(data.n_items, np.float64)
        if self.config.use_biases:
            n_u = np.bincount(r.row, minlength=data.n_users)
            n_i = np.bincount(r.col, minlength=data.n_items)
            for _ in range(self.config.iterations):
                resid = r.data - self.mean - bu[r.row]
                bi = np.bincount(r.col, resid, minlength=data.n_items) / (
                    n_i + self.config.item_reg
                )
                resid = r.data - self.mean - bi[r.col]
                bu = np.bincount(r.row, resid, minlength=data.n_users) / (
                    n_u + self.config.user_reg
                )
        self.user_bias, self.item_bias = bu.astype(np.float32), bi.astype(np.float32)

    def predict(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """Predicted ratings for (user, item) pairs; unknown users/items get zero bias."""
        user_vocab, item_vocab, _ = self.fitted_parts()
        u = user_vocab.lookup(list(user_ids))
        i = item_vocab.lookup(list(item_ids))
        bu = np.where(u >= 0, self.user_bias[np.maximum(u, 0)], 0.0)
        bi = np.where(i >= 0, self.item_bias[np.maximum(i, 0)], 0.0)
        return (self.mean + bu + bi).astype(np.float32)

    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        return np.tile(self.item_bias, (len(users), 1))

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {
            "user_bias": self.user_bias,
            "item_bias": self.item_bias,
            "mean": np.array([self.mean]),
        }

    def load_state_arrays(self, state, path) -> None:
        self.user_bias, self.item_bias = state["user_bias"], state["item_bias"]
        self.mean = float(state["mean"][0])
