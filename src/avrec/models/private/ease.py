"""DP-EASE: EASE's item x item weights from a Gram matrix released once with user-level
differential privacy, optionally blended with item counts released in the same step.

1. Each user's contribution is bounded (:mod:`avrec.models.private.clipping`): at most
   ``max_items_per_user`` items, the row weighted so that the user's share of the Gram matrix
   ``X^T W X`` has a known L2 norm (the sensitivity).
2. The Gram matrix's upper triangle (with the diagonal, the weighted item counts) gets Gaussian
   noise calibrated by the accountant to ``(epsilon, delta)``, mirrored to keep it symmetric.
   With ``count_share > 0`` the same release also holds per-item counts (each user's row of
   unit L2 norm), noised separately: the two parts together are one Gaussian mechanism whose
   noise multiplier ``sigma`` satisfies ``1 / sigma^2 = 1 / sigma_gram^2 + 1 / sigma_counts^2``
   (``count_share`` of that total goes to the counts), so the accounting stays exact.
3. Everything after is post-processing of that one release and costs no privacy: items whose
   noisy count is below ``count_threshold`` noise deviations are dropped (solved without them,
   they rank below every kept item), an optional low-rank projection (``rank``) removes most
   of the noise, the regulariser grows with the noise (``noise_l2`` times the noise matrix's
   expected spectral norm ``2 std sqrt(n_items)``), negative eigenvalues are clipped where the
   matrix is still not positive definite, and EASE's closed form gives ``B``; scores are
   ``(1 - w) z(h B) + w z(counts)`` with ``w = popularity_weight`` (plain ``h B`` at 0).

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
from avrec.models.scaling import zscore_rows

#: fit's peak memory per items x items cell: EASE's (15) and a copy of the noisy Gram matrix,
#: kept in case the penalty does not make it positive definite
PEAK_BYTES_PER_CELL = 23.0


class DPEASEConfig(PrivateConfig):
    max_items_per_user: int = Field(default=1000, ge=1)
    #: the regulariser without noise (on the weighted Gram matrix's scale)
    l2: float = Field(default=10.0, gt=0)
    #: extra regulariser, in units of the noise matrix's expected spectral norm
    noise_l2: float = Field(default=0.0, ge=0)
    weighting: Weighting = "unit"
    #: drop items whose noisy weighted count is below this many noise deviations
    count_threshold: float = Field(default=0.0, ge=0)
    #: clip the noisy Gram matrix's negative eigenvalues to 0 before regularising
    psd_clip: bool = True
    #: keep only the noisy Gram matrix's ``rank`` largest eigenvalues (None: all)
    rank: int | None = Field(default=50, ge=1)
    #: the share of the budget (of ``1 / sigma^2``) spent on separate item counts (0: none)
    count_share: float = Field(default=0.0, ge=0, lt=1)
    #: weight of the z-scored noisy item counts in the score (needs ``count_share > 0``)
    popularity_weight: float = Field(default=0.0, ge=0, le=1)


class DPEASE(PrivateRecommender):
    name = "dp-ease"
    Config = DPEASEConfig
    config: DPEASEConfig

    def _fit(self, data: TrainData) -> None:
        require_dense(self.name, data.matrix.shape[1], PEAK_BYTES_PER_CELL)
        cfg = self.config
        if cfg.popularity_weight > 0 and cfg.count_share == 0:
            raise ValueError("dp-ease: popularity_weight > 0 needs count_share > 0")
        x = bound_contributions(data, cfg.max_items_per_user, cfg.seed)
        lengths = np.diff(x.indptr)
        gram = gram_matrix(sp.diags(np.sqrt(row_weights(lengths, cfg.weighting))) @ x)
        sensitivity = gram_sensitivity(cfg.max_items_per_user, cfg.weighting)
        sigma, delta = noise_multiplier(cfg, data.n_users)
        std = sigma * sensitivity / math.sqrt(1.0 - cfg.count_share)
        rng = noise_rng(cfg.noise_seed)
        if std > 0:
            add_symmetric_noise(gram, std, rng)
        counts = None
        count_std = 0.0
        if cfg.count_share > 0:  # each user's row of unit L2 norm: sensitivity 1
            unit = sp.diags(1.0 / np.sqrt(np.maximum(lengths, 1))) @ x
            counts = np.asarray(unit.sum(axis=0), dtype=np.float64).ravel()
            count_std = sigma / math.sqrt(cfg.count_share)
            if count_std > 0:
                counts += rng.normal(0.0, count_std, len(counts))
        n = len(gram)
        keep = np.diag(gram) >= cfg.count_threshold * std if std > 0 else np.ones(n, bool)
        self.weights = np.zeros((n, n), np.float32)
        self.kept_ = keep
        kept = np.flatnonzero(keep)
        penalty = cfg.l2 + cfg.noise_l2 * 2.0 * std * math.sqrt(len(kept))
        if len(kept):
            sub = np.ascontiguousarray(gram[np.ix_(kept, kept)])
            del gram
            self.weights[np.ix_(kept, kept)] = _solve(sub, penalty, std, cfg)
        self.counts_ = (counts if counts is not None else np.zeros(n)).astype(np.float32)
        clipped = np.diff((data.matrix > 0).tocsr().indptr) > lengths
        self.privacy_ = release_record(
            cfg,
            data.n_users,
            sigma,
            delta,
            sensitivity,
            "the item x item Gram matrix of the bounded, weighted interactions (upper "
            "triangle with the diagonal)"
            + (
                " and per-item counts (unit-norm rows), in one release"
                if counts is not None
                else ", once"
            ),
            {
                "max_items_per_user": cfg.max_items_per_user,
                "weighting": cfg.weighting,
                "selection": "smallest keyed hash of (seed, user, item) per user",
                "users_clipped": int(clipped.sum()),
                "count_sensitivity_l2": 1.0 if counts is not None else None,
            },
        )
        self.privacy_["noise_std"] = std
        self.privacy_["count_noise_std"] = count_std if counts is not None else None
        self.privacy_["post_processing"] = {
            "penalty": penalty,
            "items_dropped": int(n - len(kept)),
            "rank": cfg.rank,
            "psd_clip": cfg.psd_clip,
            "popularity_weight": cfg.popularity_weight,
        }

    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        scores = np.asarray((histories > 0).astype(np.float32) @ self.weights, dtype=np.float32)
        if self.kept_.any() and not self.kept_.all():  # dropped items rank below the others
            floor = scores[:, self.kept_].min(axis=1, keepdims=True) - 1.0
            scores[:, ~self.kept_] = floor
        w = self.config.popularity_weight
        if w == 0:
            return scores
        blend = (1 - w) * zscore_rows(scores) + w * zscore_rows(self.counts_)[None, :]
        return blend.astype(np.float32)

    def item_similarity(self) -> np.ndarray:
        return self.weights

    def contributions(
        self, history: sp.csr_matrix, items: np.ndarray, user: int = -1
    ) -> np.ndarray:
        return self.weights[np.ix_(history.indices, items)].T

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "kept": self.kept_, "counts": self.counts_}

    def load_state_arrays(self, state: dict[str, np.ndarray], path: Any) -> None:
        self.weights = state["weights"]
        self.kept_ = state["kept"]
        self.counts_ = state["counts"]
        self.load_privacy(path)


def _solve(gram: np.ndarray, penalty: float, std: float, cfg: DPEASEConfig) -> np.ndarray:
    """EASE's weights from the (noisy) Gram matrix of the kept items."""
    if std > 0 and (cfg.rank is not None or cfg.psd_clip):
        gram = _denoise(gram, cfg.rank)
    try:
        return weights_from_gram(gram.copy() if std > 0 else gram, penalty)
    except ValueError:  # noise made it indefinite past the penalty: clip, then solve
        return weights_from_gram(_denoise(gram, None), penalty)


def _denoise(gram: np.ndarray, rank: int | None) -> np.ndarray:
    """The nearest positive semi-definite matrix of rank at most ``rank`` (None: any) in
    Frobenius norm: the ``rank`` largest eigenvalues, negative ones set to zero."""
    values, vectors = np.linalg.eigh(gram)
    values = np.maximum(values, 0.0)
    if rank is not None:
        values[: max(len(values) - rank, 0)] = 0.0
    out = (vectors * values) @ vectors.T
    return np.ascontiguousarray((out + out.T) / 2)
