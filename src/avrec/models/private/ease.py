"""DP-EASE: EASE's item x item weights from a Gram matrix released with user-level
differential privacy, after per-item counts that choose which items it covers.

1. Each user's contribution is bounded (:mod:`avrec.models.private.clipping`): at most
   ``max_items_per_user`` items, the row weighted so that the user's share of the Gram matrix
   ``X^T W X`` has a known L2 norm (the sensitivity).
2. With ``count_share > 0`` per-item counts (each user's row of unit L2 norm: sensitivity 1)
   are released first, with Gaussian noise. From them (post-processing) the items of the Gram
   matrix are chosen: those with the largest noisy counts, as many as ``gram_snr`` allows
   (about as many items as the users' whole weight can lift ``gram_snr`` noise deviations
   above the noise, on average) and ``gram_items`` / ``gram_threshold``; where the users are
   many against the noise, only the block of items whose estimated diagonal stands
   ``block_edge`` times above the noise edge (every direction above the noise: EASE keeps the
   full matrix), if that block holds ``block_cover`` of the counts. Each user's weight is
   then spread over their chosen items only.
3. The chosen items' Gram matrix (upper triangle with the diagonal) gets Gaussian noise,
   mirrored to keep it symmetric. The two releases are Gaussian mechanisms composed
   adaptively; their composition is exactly one Gaussian mechanism whose noise multiplier
   ``sigma`` satisfies ``1 / sigma^2 = 1 / sigma_counts^2 + 1 / sigma_gram^2`` (Gaussian
   differential privacy, Dong, Roth & Su 2019), so the accountant's ``sigma`` for
   ``(epsilon, delta)`` is split: the counts get the share :func:`count_share` of
   ``1 / sigma^2``, the Gram matrix the rest.
4. Everything after is post-processing and costs no privacy: items whose noisy diagonal is
   below ``count_threshold`` noise deviations are dropped, the noisy matrix is projected on its
   eigenvalues above ``rank_edge`` times the noise matrix's expected spectral norm ``2 std
   sqrt(n)`` (at most ``rank`` of them; those below are indistinguishable from noise, and
   get their mean eigenvalue, or 0 with ``bulk = "zero"``), the
   regulariser grows with the noise (``noise_l2``), and EASE's closed form gives ``B``.
   Scores are ``h B`` over the Gram matrix's items, ``(1 - w) z(h B) + w z(counts)`` with ``w =
   popularity_weight``; the other items rank below them by their noisy counts.

Scoring a user uses their own history (not clipped: it is theirs) and the released weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

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
    #: keep at most the noisy Gram matrix's ``rank`` largest eigenvalues (None: any number)
    rank: int | None = Field(default=None, ge=1)
    #: keep only eigenvalues above this multiple of the noise matrix's expected spectral
    #: norm ``2 std sqrt(n)`` (the rest are indistinguishable from noise); 0: ``rank`` alone
    rank_edge: float = Field(default=1.0, ge=0)
    #: the share of the budget (of ``1 / sigma^2``) spent on separate item counts (0: none),
    #: at least; see ``count_share_scale``
    count_share: float = Field(default=0.2, ge=0, lt=1)
    #: raise the share to ``count_share_scale * sigma / n_users`` (at most
    #: ``count_share_max``) where the noise is large against the number of users, so that the
    #: counts that choose the Gram matrix's items stay informative (None: ``count_share``)
    count_share_scale: float | None = Field(default=60.0, gt=0)
    count_share_max: float = Field(default=0.6, gt=0, lt=1)
    #: weight of the z-scored noisy item counts in the score (needs ``count_share > 0``)
    popularity_weight: float = Field(default=0.0, ge=0, le=1)
    #: release the Gram matrix of at most this many items, those with the largest noisy
    #: counts (needs ``count_share > 0``; None: no fixed cap)
    gram_items: int | None = Field(default=None, ge=1)
    #: ... and only items whose noisy count is at least this many count-noise deviations
    gram_threshold: float = Field(default=0.0, ge=0)
    #: ... and at most ``bound / (gram_snr std)`` items, where ``bound`` is the most the users
    #: can add to the Gram matrix's trace (``n_users`` times a user's most): the number of
    #: items over which the signal's mean diagonal entry is ``gram_snr`` noise deviations
    #: (public: the number of users, the clipping and epsilon; None: no such cap; needs
    #: ``count_share > 0``, without counts every item is kept)
    gram_snr: float | None = Field(default=2.8, gt=0)
    #: after the low-rank projection, give back each item's noisy diagonal entry where it is
    #: above the projection's (a low-rank plus diagonal estimate: the diagonal's signal is
    #: far above its noise, unlike most off-diagonal entries')
    restore_diagonal: bool = False
    #: shrink each kept eigenvalue ``y`` to ``t - s^2 n / t``, ``t = (y + sqrt(y^2 - 4 s^2 n))
    #: / 2`` (``s``: the noise std): the spiked-Wigner estimate of the signal's eigenvalue
    #: times its eigenvector's expected overlap with the noisy one (0 at the noise edge)
    shrink: bool = False
    #: cut the spectrum of the noisy matrix without its diagonal (eigenvalues of either sign
    #: beyond the edge), then add the noisy diagonal back: the diagonal (each item's weighted
    #: count) stands far above its noise and would otherwise take the kept directions, one per
    #: popular item, leaving the co-occurrences to the cut
    off_diagonal: bool = False
    #: what the eigenvalues below the edge become: ``zero`` (a low-rank matrix), or ``mean``,
    #: their mean (the trace less the kept eigenvalues, over the rest; random-matrix
    #: "clipping", Bouchaud & Potters): EASE inverts the matrix, and zeroed directions, with
    #: only ``l2`` left in them, would dominate the inverse
    bulk: Literal["zero", "mean"] = "mean"
    #: release the Gram matrix of only the ``m`` items of the largest noisy counts, for the
    #: largest ``m`` whose ``m``-th item's estimated diagonal (the users' trace bound shared
    #: out in proportion to the noisy counts of the ``m`` items) is at least ``block_edge``
    #: times the noise edge ``2 std sqrt(m)``: every direction of such a block stands above
    #: the noise, nothing is cut and EASE sees all of them (:func:`full_rank_items`; None:
    #: off). Where there are many users against the noise (the synthetic 100k-user catalog)
    #: that beats the low-rank estimate over more items
    block_edge: float | None = Field(default=2.0, gt=0)
    #: ... used only where that block holds at least this share of the noisy counts' sum;
    #: otherwise (few users: MovieLens) the block would leave most interactions out, and the
    #: low-rank estimate over ``gram_snr``'s items is kept
    block_cover: float = Field(default=0.35, ge=0, le=1)
    #: keep (post-processing) only the ``m`` items of the largest noisy diagonal, for the
    #: largest ``m`` whose ``m``-th diagonal entry is above ``diagonal_edge`` times the noise
    #: edge ``2 std sqrt(m)``: then every direction of the block stands above the noise and
    #: EASE inverts the noisy block as it is (None: no such cut)
    diagonal_edge: float | None = Field(default=None, gt=0)


class DPEASE(PrivateRecommender):
    name = "dp-ease"
    Config = DPEASEConfig
    config: DPEASEConfig

    def _fit(self, data: TrainData) -> None:
        require_dense(self.name, data.matrix.shape[1], PEAK_BYTES_PER_CELL)
        cfg = self.config
        if cfg.popularity_weight > 0 and cfg.count_share == 0:
            raise ValueError("dp-ease: popularity_weight > 0 needs count_share > 0")
        if (cfg.gram_items is not None or cfg.gram_threshold > 0) and cfg.count_share == 0:
            raise ValueError("dp-ease: gram_items or gram_threshold needs count_share > 0")
        x = bound_contributions(data, cfg.max_items_per_user, cfg.seed)
        sigma, delta = noise_multiplier(cfg, data.n_users)
        rng = noise_rng(cfg.noise_seed)
        share = count_share(cfg, sigma, data.n_users)
        counts = None
        count_std = 0.0
        if share > 0:  # each user's row of unit L2 norm: sensitivity 1
            unit = sp.diags(1.0 / np.sqrt(np.maximum(np.diff(x.indptr), 1))) @ x
            counts = np.asarray(unit.sum(axis=0), dtype=np.float64).ravel()
            count_std = sigma / math.sqrt(share)
            if count_std > 0:
                counts += rng.normal(0.0, count_std, len(counts))
        sensitivity = gram_sensitivity(cfg.max_items_per_user, cfg.weighting)
        std = sigma * sensitivity / math.sqrt(1.0 - share)
        # the Gram matrix's items, chosen from the released counts (adaptive composition of
        # two Gaussian mechanisms, exact in the accounting above); each user's weight is
        # spread over their chosen items only
        limit = cfg.gram_items
        if cfg.gram_snr is not None and std > 0:
            k = cfg.max_items_per_user
            bound = data.n_users * float(row_weights(np.array([k]), cfg.weighting)[0]) * k
            limit = min(limit or x.shape[1], max(1, int(bound / (cfg.gram_snr * std))))
        block = None
        if cfg.block_edge is not None and counts is not None and std > 0:
            k = cfg.max_items_per_user
            trace = data.n_users * float(row_weights(np.array([k]), cfg.weighting)[0]) * k
            block = full_rank_items(counts, trace, std, cfg.block_edge, cfg.block_cover)
            if block is not None:
                limit = min(limit or block, block)
        chosen = (
            _gram_items(counts, count_std, cfg.gram_threshold, limit)
            if counts is not None and _selects(cfg)
            else np.arange(x.shape[1])
        )
        xs = x[:, chosen]
        lengths = np.diff(xs.indptr)
        gram = gram_matrix(sp.diags(np.sqrt(row_weights(lengths, cfg.weighting))) @ xs)
        del xs
        if std > 0:
            add_symmetric_noise(gram, std, rng)
        n = x.shape[1]
        above = np.diag(gram) >= cfg.count_threshold * std if std > 0 else np.ones(len(gram), bool)
        if cfg.diagonal_edge is not None and std > 0:
            above &= _diagonal_block(np.diag(gram), cfg.diagonal_edge * 2.0 * std)
        kept = chosen[above]
        keep = np.zeros(n, bool)
        keep[kept] = True
        self.weights = np.zeros((n, n), np.float32)
        self.kept_ = keep
        penalty = cfg.l2 + cfg.noise_l2 * 2.0 * std * math.sqrt(len(kept))
        self.signal_rank_: int | None = None
        if len(kept):
            sub = np.ascontiguousarray(gram[np.ix_(above, above)])
            del gram
            self.weights[np.ix_(kept, kept)], self.signal_rank_ = _solve(sub, penalty, std, cfg)
        self.counts_ = (counts if counts is not None else np.zeros(n)).astype(np.float32)
        clipped = np.diff((data.matrix > 0).tocsr().indptr) > np.diff(x.indptr)
        self.privacy_ = release_record(
            cfg,
            data.n_users,
            sigma,
            delta,
            sensitivity,
            (
                "per-item counts (unit-norm rows), then the item x item Gram matrix (upper "
                "triangle with the diagonal) of the bounded, weighted interactions with the "
                "items of the largest noisy counts"
                if counts is not None
                else "the item x item Gram matrix of the bounded, weighted interactions (upper "
                "triangle with the diagonal), once"
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
        if counts is not None and delta is not None:
            self.privacy_["mechanism"] = (
                "gaussian, two releases composed adaptively, exactly one gaussian mechanism "
                "(gaussian differential privacy), analytic accounting (dp-accounting)"
            )
        self.privacy_["count_noise_std"] = count_std if counts is not None else None
        self.privacy_["post_processing"] = {
            "penalty": penalty,
            "items_dropped": int(n - len(kept)),
            "count_share": share,
            "gram_items": len(chosen),
            "full_rank_block": block,
            "rank": cfg.rank,
            "rank_edge": cfg.rank_edge,
            "signal_rank": self.signal_rank_,
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
        kept = self.kept_
        if not kept.any():  # nothing released beyond the counts
            return np.tile(self.counts_, (len(users), 1))
        w = self.config.popularity_weight
        if w > 0:  # the blend among the kept items
            scores[:, kept] = (1 - w) * zscore_rows(scores[:, kept]) + w * zscore_rows(
                self.counts_[kept]
            )[None, :]
        if not kept.all():  # dropped items rank below the others
            floor = scores[:, kept].min(axis=1, keepdims=True) - 1.0
            rest = self.counts_[~kept]  # by their noisy counts (all 0 without counts)
            spread = float(np.ptp(rest)) or 1.0
            scores[:, ~kept] = floor + ((rest - rest.max()) / spread)[None, :]
        return scores

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


def count_share(cfg: DPEASEConfig, sigma: float, n_users: int) -> float:
    """The share of ``1 / sigma^2`` spent on the item counts: ``count_share``, raised to
    ``count_share_scale * sigma / n_users`` (at most ``count_share_max``) where that is more;
    a function of the config, epsilon, delta and the number of users only."""
    if cfg.count_share == 0 or cfg.count_share_scale is None:
        return cfg.count_share
    wanted = min(cfg.count_share_scale * sigma / max(n_users, 1), cfg.count_share_max)
    return max(cfg.count_share, wanted)


def full_rank_items(
    counts: np.ndarray, trace: float, std: float, edge: float, cover: float
) -> int | None:
    """The number ``m`` of items (those of the largest noisy ``counts``) whose Gram matrix
    stands above the noise in every direction, or None where that block is too small to use.

    The weighted Gram matrix of the ``m`` items has a trace of at most ``trace`` (every user's
    weight spread over their items among them); shared out in proportion to the noisy counts,
    the ``m``-th item's diagonal is about ``trace c_m / (c_1 + ... + c_m)``. The block is the
    largest ``m`` where that is at least ``edge`` times the noise matrix's spectral norm ``2
    std sqrt(m)`` (about the smallest eigenvalue of a matrix whose diagonal dominates). None
    where the block's counts are under ``cover`` of all the counts: the block would leave
    most interactions out, and a low-rank estimate over more items does better. A function of
    released counts and public quantities only (post-processing)."""
    order = -np.sort(-np.asarray(counts, dtype=np.float64), kind="stable")
    total = float(order.sum())
    if len(order) == 0 or total <= 0 or std <= 0:
        return None
    running = np.cumsum(np.maximum(order, 0.0))
    sizes = np.arange(1, len(order) + 1)
    estimate = trace * order / np.maximum(running, 1e-300)
    fits = np.flatnonzero(estimate >= edge * 2.0 * std * np.sqrt(sizes))
    if not len(fits):
        return None
    m = int(fits[-1]) + 1
    return m if running[m - 1] >= cover * total else None


def _selects(cfg: DPEASEConfig) -> bool:
    return (
        cfg.gram_items is not None
        or cfg.gram_threshold > 0
        or cfg.gram_snr is not None
        or cfg.block_edge is not None
    )


def _gram_items(
    counts: np.ndarray, count_std: float, threshold: float, limit: int | None
) -> np.ndarray:
    """The items whose Gram matrix is released: the (at most ``limit``) items with the
    largest noisy counts, each at least ``threshold`` count noise deviations; sorted."""
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] >= threshold * count_std]
    return np.sort(order[:limit])


def _solve(
    gram: np.ndarray, penalty: float, std: float, cfg: DPEASEConfig
) -> tuple[np.ndarray, int | None]:
    """EASE's weights from the (noisy) Gram matrix of the kept items, and the rank kept by
    the denoising (None: none done)."""
    rank = None
    if std > 0 and (cfg.rank is not None or cfg.psd_clip or cfg.rank_edge > 0):
        edge = cfg.rank_edge * 2.0 * std * math.sqrt(len(gram))
        noisy_diagonal = np.diag(gram).copy()
        spread = std * math.sqrt(len(gram)) if cfg.shrink else 0.0
        if cfg.off_diagonal:
            gram, rank = _denoise_off_diagonal(gram, cfg.rank, edge)
        else:
            bulk = float(np.trace(gram)) if cfg.bulk == "mean" else None
            gram, rank = _denoise(gram, cfg.rank, edge, spread, bulk)
        if cfg.restore_diagonal:
            gram[np.diag_indices_from(gram)] = np.maximum(noisy_diagonal, np.diag(gram))
    try:
        return weights_from_gram(gram.copy() if std > 0 else gram, penalty), rank
    except ValueError:  # noise made it indefinite past the penalty: clip, then solve
        return weights_from_gram(_denoise(gram, None)[0], penalty), rank


def _denoise(
    gram: np.ndarray,
    rank: int | None,
    edge: float = 0.0,
    spread: float = 0.0,
    trace: float | None = None,
) -> tuple[np.ndarray, int]:
    """The nearest positive semi-definite matrix of rank at most ``rank`` (None: any) in
    Frobenius norm, without the eigenvalues at or below ``edge``: the ``rank`` largest
    eigenvalues above it, negative ones set to zero, shrunk by the noise's ``spread = s sqrt(n)``
    where it is given (:attr:`DPEASEConfig.shrink`); with ``trace`` (the matrix's), the
    other directions get the mean of the other eigenvalues, ``(trace - kept) / (n - rank)``
    (:attr:`DPEASEConfig.bulk`); and the rank kept."""
    from scipy.linalg import eigh

    # only the eigenvalues above the edge (and 0): the vectors of the rest are never formed
    values, vectors = eigh(gram, subset_by_value=(max(edge, 0.0), np.inf), driver="evr")
    if rank is not None:
        values[: max(len(values) - rank, 0)] = 0.0
    if spread > 0:
        t = (values + np.sqrt(np.maximum(values**2 - 4 * spread**2, 0.0))) / 2
        values = np.where(values > 2 * spread, t - spread**2 / np.maximum(t, 1e-300), 0.0)
    keep = values > 0
    out = (vectors[:, keep] * values[keep]) @ vectors[:, keep].T
    out = (out + out.T) / 2
    n, kept = len(gram), int(keep.sum())
    if trace is not None and kept < n:  # the cut directions get their mean eigenvalue
        level = max((trace - float(values[keep].sum())) / (n - kept), 0.0)
        out -= level * (vectors[:, keep] @ vectors[:, keep].T)
        out[np.diag_indices_from(out)] += level
    return np.ascontiguousarray(out), kept


def _denoise_off_diagonal(
    gram: np.ndarray, rank: int | None, edge: float
) -> tuple[np.ndarray, int]:
    """The noisy diagonal plus the off-diagonal part cut to its eigenvalues beyond ``edge`` in
    absolute value (at most ``rank`` of the largest), and the rank kept."""
    from scipy.linalg import eigh

    diagonal = np.diag(gram).copy()
    gram[np.diag_indices_from(gram)] = 0.0
    parts = [
        eigh(gram, subset_by_value=bounds, driver="evr")
        for bounds in ((max(edge, 0.0), np.inf), (-np.inf, -max(edge, 0.0)))
    ]
    values = np.concatenate([v for v, _ in parts])
    vectors = np.concatenate([u for _, u in parts], axis=1)
    if rank is not None and len(values) > rank:
        top = np.argsort(-np.abs(values))[:rank]
        values, vectors = values[top], vectors[:, top]
    out = (vectors * values) @ vectors.T
    out = (out + out.T) / 2
    out[np.diag_indices_from(out)] = np.maximum(diagonal, 0.0)
    return np.ascontiguousarray(out), len(values)


def _diagonal_block(diagonal: np.ndarray, edge_per_root: float) -> np.ndarray:
    """The items (a mask) of the largest diagonal entries, as many ``m`` as keep the ``m``-th
    entry at least ``edge_per_root sqrt(m)``."""
    order = np.argsort(-diagonal, kind="stable")
    sizes = np.arange(1, len(order) + 1)
    fits = np.flatnonzero(diagonal[order] >= edge_per_root * np.sqrt(sizes))
    mask = np.zeros(len(diagonal), bool)
    if len(fits):
        mask[order[: fits[-1] + 1]] = True
    return mask
