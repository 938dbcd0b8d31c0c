"""Popularity baseline: items ranked by how many users interacted with them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from avrec.models.base import ModelConfig, Recommender, TrainData


class PopularityConfig(ModelConfig):
    pass


class Popularity(Recommender):
    name = "popularity"
    Config = PopularityConfig
    config: PopularityConfig

    def _fit(self, data: TrainData) -> None:
        counts = np.asarray((data.matrix > 0).sum(axis=0)).ravel().astype(np.float32)
        self.item_counts = counts

    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        return np.tile(self.item_counts, (len(users), 1))

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"item_counts": self.item_counts}

    def load_state_arrays(self, state, path) -> None:
        self.item_counts = state["item_counts"]
