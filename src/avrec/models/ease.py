"""EASE (Steck 2019): a closed-form item-item linear autoencoder, a strong ranking baseline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from avrec.models.base import ModelConfig, Recommender, TrainData


class EASEConfig(ModelConfig):
    l2: float = 500.0
    #: treat every interaction as 1 (True) or use the interaction weights
    binary: bool = True


class EASE(Recommender):
    name = "ease"
    Config = EASEConfig

    def _fit(self, data: TrainData) -> None:
        x = data.matrix.astype(np.float64)
        if self.config.binary:
            x = (x > 0).astype(np.float64)
        gram = (x.T @ x).toarray()
        gram[np.diag_indices_from(gram)] += self.config.l2
        p = np.linalg.inv(gram)
        b = -p / np.diag(p)
        b[np.diag_indices_from(b)] = 0.0
        self.weights = b.astype(np.float32)

    def score(self, users: np.ndarray, histories: sp.csr_matrix,
              queries: Sequence[str | None] | None = None) -> np.ndarray:
        h = histories if not self.config.binary else (histories > 0).astype(np.float32)
        return np.asarray(h @ self.weights, dtype=np.float32)

    def item_similarity(self) -> np.ndarray:
        """Item-to-item weights (used for explanations: which history items drove a score)."""
        return self.weights

    def contributions(self, history: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        return self.weights[np.ix_(history.indices, items)].T

    def _state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights}

    def _set_state(self, state, path) -> None:
        self.weights = state["weights"]
