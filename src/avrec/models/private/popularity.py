"""DP popularity: items ranked by per-item user counts released once with user-level
differential privacy (each user counts at most ``max_items_per_user`` items, chosen at random
with the seed; Gaussian noise of L2 sensitivity ``sqrt(max_items_per_user)``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from avrec.models.base import TrainData
from avrec.models.private.clipping import (
    PrivateConfig,
    bound_contributions,
    count_sensitivity,
    noise_multiplier,
    noise_rng,
    release_record,
)
from avrec.models.private.model import PrivateRecommender


class DPPopularityConfig(PrivateConfig):
    max_items_per_user: int = Field(default=20, ge=1)


class DPPopularity(PrivateRecommender):
    name = "dp-popularity"
    Config = DPPopularityConfig
    config: DPPopularityConfig

    def _fit(self, data: TrainData) -> None:
        cfg = self.config
        x = bound_contributions(data, cfg.max_items_per_user, cfg.seed)
        counts = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
        sensitivity = count_sensitivity(cfg.max_items_per_user)
        sigma, delta = noise_multiplier(cfg, data.n_users)
        if sigma > 0:
            counts += noise_rng(cfg.noise_seed).normal(0.0, sigma * sensitivity, len(counts))
        self.item_counts = counts.astype(np.float32)
        self.privacy_ = release_record(
            cfg,
            data.n_users,
            sigma,
            delta,
            sensitivity,
            "the number of users of each item (bounded interactions), once",
            {
                "max_items_per_user": cfg.max_items_per_user,
                "weighting": "binary",
                "selection": "smallest keyed hash of (seed, user, item) per user",
            },
        )

    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        return np.tile(self.item_counts, (len(users), 1))

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"item_counts": self.item_counts}

    def load_state_arrays(self, state: dict[str, np.ndarray], path: Any) -> None:
        self.item_counts = state["item_counts"]
        self.load_privacy(path)
