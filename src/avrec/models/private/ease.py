"""DP-EASE: EASE's item x item weights from a Gram matrix released once with user-level
differential privacy.

1. Each user's contribution is bounded (:mod:`avrec.models.private.clipping`): at most
   ``max_items_per_user`` items, the row weighted so that the user's share of the Gram matrix
   ``X^T W X`` has a known L2 norm (the sensitivity).
2. The Gram matrix's upper triangle (with the diagonal, the weighted item counts) gets Gaussian
   noise calibrated by the accountant to ``(epsilon, delta)``, mirrored to keep it symmetric.
3. Everything after is post-processing of that one release and costs no privacy: items whose
   noisy count is below ``count_threshold`` noise deviations are dropped (their weights are
   zero), the regulariser grows with the noise (``noise_l2`` times the noise matrix's expected
   spectral norm ``2 std sqrt(n_items)``), negative eigenvalues are clipped where the matrix
   is still not positive definite, and EASE's closed form gives ``B``.

Scoring a user uses their own history (not clipped: it is theirs) and the released weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from avrec.models.base import TrainData
from avrec.models.baselines.ease import gram_matrix, weights_from_gram
from avrec.models.memory import require_dense
from avrec.models.private.clipping import (
    PrivateConfig,
    Weighting,
    add_symmetric_noise,
    bound_contributions,
    gram_sensitivity,
    noise_multiplier,
    noise_rng,
    release_record,
    row_weights,
)
from avrec.models.private.model import PrivateRecommender

#: fit's peak memory per items x items cell: EASE's (15) and a copy of the noisy Gram matrix,
#: kept in case the penalty does not make it positive definite
PEAK_BYTES_PER_CELL = 23.0


class DPEASEConfig(PrivateConfig):
    #: the regulariser without noise (on the weighted Gram matrix's scale)
    l2: float = Field(default=5.0, gt=0)
    #: extra regulariser, in units of the noise matrix's expected spectral norm
    noise_l2: float = Field(default=1.0, ge=0)
    weighting: Weighting = "unit"
    #: drop items whose noisy weighted count is below this many noise deviations (0: keep all)
    count_threshold: float = Field(default=0.0, ge=0)
    #: clip the noisy Gram matrix's negative eigenvalues to 0 before regularising
    psd_clip: bool = False


class DPEASE(PrivateRecommender):
    name = "dp-ease"
    Config = DPEASEConfig
    config: DPEASEConfig

    def _fit(self, data: TrainData) -> None:
        require_dense(self.name, data.matrix.shape[1], PEAK_BYTES_PER_CELL)
        cfg = self.config
        x = bound_contributions(data, cfg.max_items_per_user, cfg.seed)
        w2 = row_weights(np.diff(x.indptr), cfg.weighting)
        gram = gram_matrix(sp.diags(np.sqrt(w2)) @ x)
        sensitivity = gram_sensitivity(cfg.max_items_per_user, cfg.weighting)
        sigma, delta = noise_multiplier(cfg, data.n_users)
        std = sigma * sensitivity
        if std > 0:
            add_symmetric_noise(gram, std, noise_rng(cfg.noise_seed))
        n = len(gram)
        dropped = np.diag(gram) < cfg.count_threshold * std if std > 0 else np.zeros(n, bool)
        penalty = cfg.l2 + cfg.noise_l2 * 2.0 * std * math.sqrt(n)
        if cfg.psd_clip and std > 0:
            gram = _clip_eigenvalues(gram)
        try:
            weights = weights_from_gram(gram.copy() if std > 0 else gram, penalty)
        except ValueError:  # noise made it indefinite past the penalty: clip, then solve
            weights = weights_from_gram(_clip_eigenvalues(gram), penalty)
        weights[dropped] = 0.0
        weights[:, dropped] = 0.0
        self.weights = weights
        clipped = np.diff((data.matrix > 0).tocsr().indptr) > np.diff(x.indptr)
        self.privacy_ = release_record(
            cfg,
            data.n_users,
            sigma,
            delta,
            sensitivity,
            "the item x item Gram matrix of the bounded, weighted interactions (upper "
            "triangle with the diagonal), once",
            {
                "max_items_per_user": cfg.max_items_per_user,
                "weighting": cfg.weighting,
                "selection": "smallest keyed hash of (seed, user, item) per user",
                "users_clipped": int(clipped.sum()),
            },
        )
        self.privacy_["post_processing"] = {
            "penalty": penalty,
            "items_dropped": int(dropped.sum()),
            "psd_clip": cfg.psd_clip,
        }

    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        return np.asarray((histories > 0).astype(np.float32) @ self.weights, dtype=np.float32)

    def item_similarity(self) -> np.ndarray:
        return self.weights

    def contributions(
        self, history: sp.csr_matrix, items: np.ndarray, user: int = -1
    ) -> np.ndarray:
        return self.weights[np.ix_(history.indices, items)].T

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights}

    def load_state_arrays(self, state: dict[str, np.ndarray], path: Any) -> None:
        self.weights = state["weights"]
        self.load_privacy(path)


def _clip_eigenvalues(gram: np.ndarray) -> np.ndarray:
    """The nearest positive semi-definite matrix (in Frobenius norm): negative eigenvalues set
    to zero."""
    values, vectors = np.linalg.eigh(gram)
    out = (vectors * np.maximum(values, 0.0)) @ vectors.T
    return np.ascontiguousarray((out + out.T) / 2)
