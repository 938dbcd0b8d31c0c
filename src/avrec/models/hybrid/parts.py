"""The hybrid's parts. Each has its own config (models.hybrid.config), learns in ``fit``, keeps
what it learned in fitted attributes, and saves to its own sub-folder (``parts/<name>/``: the
part's ``config.json`` and ``state.npz``) through :func:`save_part` / :func:`load_part`.

The assembly (models.hybrid.model) fits them in order: content, backbone, cold items, short
history, VAE, cold ranker, request ranker (models.hybrid.requestrank, which holds that part);
scoring runs backbone -> cold ranker -> content term -> short-history prior -> VAE blend ->
request ranker or blend.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel

from avrec.data.npz import read_npz
from avrec.models.arrays import top_k_per_column
from avrec.models.base import TrainData
from avrec.models.hybrid.coldmap import propagate_to_cold
from avrec.models.hybrid.config import (
    BackboneConfig,
    ColdItemsConfig,
    ColdRankerConfig,
    ShortHistoryConfig,
    VAEBlendConfig,
)
from avrec.models.memory import fits_dense
from avrec.models.scaling import row_moments, zscore_rows

PART_CONFIG = "config.json"
PART_STATE = "state.npz"


_T = TypeVar("_T")


def _fitted(value: _T | None, what: str) -> _T:
    """``value``, which a part's ``fit`` or ``set_state`` sets (RuntimeError before)."""
    if value is None:
        raise RuntimeError(f"the hybrid's {what} is not fitted")
    return value


def save_part(folder: Path, config: BaseModel, state: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PART_CONFIG).write_text(json.dumps(config.model_dump(mode="json"), indent=2))
    np.savez(folder / PART_STATE, **state)


def load_part(folder: Path) -> dict[str, np.ndarray]:
    if not (folder / PART_STATE).is_file():
        return {}
    return read_npz(folder / PART_STATE)


def _csr_state(prefix: str, m: sp.csr_matrix | None) -> dict[str, np.ndarray]:
    if m is None:
        return {}
    return {
        f"{prefix}_data": m.data,
        f"{prefix}_indices": m.indices,
        f"{prefix}_indptr": m.indptr,
        f"{prefix}_shape": np.array(m.shape),
    }


def _csr_from(prefix: str, state: dict[str, np.ndarray]) -> sp.csr_matrix | None:
    if f"{prefix}_data" not in state:
        return None
    return sp.csr_matrix(
        (state[f"{prefix}_data"], state[f"{prefix}_indices"], state[f"{prefix}_indptr"]),
        shape=tuple(state[f"{prefix}_shape"]),
    )


class Backbone:
    """Collaborative item x item weights ``weights_`` (score = weighted history @ weights_):
    a dense array, or a CSR matrix for the ``sparse`` kind; and the per-user rating factors
    ``rating_factor_`` (None without ratings)."""

    name = "backbone"

    def __init__(self, config: BackboneConfig):
        self.config = config
        self.weights_: np.ndarray | sp.csr_matrix | None = None
        self.rating_factor_: sp.csr_matrix | None = None
        #: the rating the factors centre on (the config's, or the training ratings' mean);
        #: a warm start weighs the new rows around the same one
        self.rating_center_: float | None = None
        #: kind ease: diag(P) of the solve and the columns of the items the cold-items part
        #: overwrote as they were solved (what exact updates need, models.baselines.ease_update)
        self.inverse_diag_: np.ndarray | None = None
        self.raw_cold_: np.ndarray | None = None

    def fit(self, data: TrainData, text_vectors: np.ndarray) -> np.ndarray | sp.csr_matrix:
        """Learn and return the weights (before the cold items' columns are filled in)."""
        from avrec.models.baselines.ease import ease_solution, rating_factors, side_features

        c = self.config
        if c.kind == "itemknn":
            from avrec.models.baselines.itemknn import ItemKNN, ItemKNNConfig

            knn = ItemKNN(ItemKNNConfig(neighbors=c.neighbors)).fit(data)
            self.weights_ = knn.similarity.toarray().astype(np.float32)
            return self.weights_
        self.rating_factor_ = rating_factors(data, c.rating_weight, c.rating_center)
        self.rating_center_ = None
        if self.rating_factor_ is not None and data.ratings is not None:
            self.rating_center_ = (
                c.rating_center
                if c.rating_center is not None
                else float(data.ratings.tocsr().data.mean())  # as rating_factors takes it
            )
        x = self.inputs(data.matrix, self.rating_factor_)
        side = side_features(data, text_vectors)
        if c.kind == "sparse":
            from avrec.models.baselines.sparse_ease import sparse_ease_weights

            self.weights_ = sparse_ease_weights(
                x, c.l2, c.neighbors, c.dropout, side, c.side_weight
            )
        else:
            self.weights_, self.inverse_diag_ = ease_solution(
                x, c.l2, c.dropout, side, c.side_weight
            )
        return self.weights_

    @staticmethod
    def inputs(matrix: sp.csr_matrix, factor: sp.csr_matrix | None) -> sp.csr_matrix:
        """EASE's input from rows of the training matrix: 1 per pair, times the rows' rating
        factors where there are any (float64)."""
        x = (sp.csr_matrix(matrix) > 0).astype(np.float64)
        if factor is not None:
            x = x.multiply(factor.astype(np.float64)).tocsr()
        return sp.csr_matrix(x)

    def raw_weights(self, warm: np.ndarray) -> np.ndarray:
        """The dense weights as solved, before the cold-items part filled the columns and
        rows of the items not ``warm`` (it changes nothing else): those columns from
        ``raw_cold_``, those rows from them by the symmetry of ``P``
        (``B[i, j] d[j] = B[j, i] d[i]``)."""
        weights = _fitted(self.weights_, "backbone")
        d, raw_cold = self.inverse_diag_, self.raw_cold_
        if sp.issparse(weights) or d is None or raw_cold is None or len(d) != weights.shape[0]:
            from avrec.models.capabilities import NotUpdatable

            raise NotUpdatable("the backbone keeps no EASE solution to update; retrain")
        out = np.array(weights, dtype=np.float32, copy=True)
        cold, hot = np.flatnonzero(~warm), np.flatnonzero(warm)
        if len(cold):
            out[:, cold] = raw_cold
            out[np.ix_(cold, hot)] = (raw_cold[hot] * (d[cold] / d[hot][:, None])).T
        return out

    def state(self) -> dict[str, np.ndarray]:
        weights = _fitted(self.weights_, "backbone")
        if sp.issparse(weights):
            return {
                **_csr_state("w", sp.csr_matrix(weights)),
                **_csr_state("rf", self.rating_factor_),
            }
        return {"weights": weights, **_csr_state("rf", self.rating_factor_), **self.solution()}

    def solution(self) -> dict[str, np.ndarray]:
        """The arrays exact updates need (kind ease), as saved."""
        if self.inverse_diag_ is None or self.raw_cold_ is None:
            return {}
        out = {"inverse_diag": self.inverse_diag_, "raw_cold": self.raw_cold_}
        if self.rating_center_ is not None:
            out["rating_center"] = np.array(self.rating_center_)
        return out

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.weights_ = state["weights"] if "weights" in state else _csr_from("w", state)
        self.rating_factor_ = _csr_from("rf", state)
        self.inverse_diag_ = state.get("inverse_diag")
        self.raw_cold_ = state.get("raw_cold")
        centre = state.get("rating_center")
        self.rating_center_ = None if centre is None else float(centre)


class ColdItems:
    """Fills the backbone's columns and rows of items without interactions from their warm
    content neighbours, mixed with a learned content -> backbone ridge map. No arrays of its
    own: what it learns is written into the backbone's weights."""

    name = "cold_items"

    def __init__(self, config: ColdItemsConfig):
        self.config = config

    def fit(
        self,
        weights: np.ndarray | sp.csr_matrix,
        data: TrainData,
        text_vectors: np.ndarray,
        warm: np.ndarray,
        keep: int = 0,
    ) -> np.ndarray | sp.csr_matrix:
        """``keep``: for sparse weights, the entries kept per cold column and row."""
        c = self.config
        if sp.issparse(weights):
            return self._fit_sparse(sp.csr_matrix(weights), data, text_vectors, warm, keep)
        out = propagate_to_cold(weights, text_vectors, warm, c.neighbors, c.temperature)
        if c.ridge > 0 and (~warm).any() and warm.sum() > 1:
            from avrec.models.hybrid.coldmap import cold_features, ridge_cold_columns

            feats = cold_features(data.items, text_vectors, data.item_features.get("genres"))
            ridge = ridge_cold_columns(weights, feats, warm, c.ridge_l2)
            near = out[:, ~warm]
            scale = max(float(near.std()), 1e-12) / max(float(ridge.std()), 1e-12)
            out[:, ~warm] = (1 - c.ridge) * near + c.ridge * scale * ridge
        return out

    def _fit_sparse(
        self,
        weights: sp.csr_matrix,
        data: TrainData,
        text_vectors: np.ndarray,
        warm: np.ndarray,
        keep: int,
    ) -> sp.csr_matrix:
        """:meth:`fit` for sparse weights: the same estimates, each cold column and row kept
        to its ``keep`` largest entries, so nothing items x items is ever dense."""
        from avrec.models.hybrid.coldmap import (
            cold_features,
            propagate_to_cold_sparse,
            ridge_cold_columns_sparse,
            sparse_std,
            with_cold_columns,
        )

        c = self.config
        out, near = propagate_to_cold_sparse(
            weights, text_vectors, warm, c.neighbors, c.temperature, keep, c.ann_above
        )
        if c.ridge > 0 and (~warm).any() and warm.sum() > 1:
            feats = cold_features(data.items, text_vectors, data.item_features.get("genres"))
            ridge, ridge_sd = ridge_cold_columns_sparse(
                weights, feats, warm, c.ridge_l2, keep, c.ann_above
            )
            scale = max(sparse_std(near), 1e-12) / max(ridge_sd, 1e-12)
            near = top_k_per_column((1 - c.ridge) * near + (c.ridge * scale) * ridge, keep)
        return with_cold_columns(out, near, warm)

    def extend(
        self,
        weights: np.ndarray | sp.csr_matrix,
        text_vectors: np.ndarray,
        warm: np.ndarray,
        keep: int = 0,
    ) -> np.ndarray | sp.csr_matrix:
        """Weights grown by new (cold) items, their columns filled from their neighbours."""
        c = self.config
        if sp.issparse(weights):
            from avrec.models.hybrid.coldmap import propagate_to_cold_sparse, with_cold_columns

            out, near = propagate_to_cold_sparse(
                sp.csr_matrix(weights),
                text_vectors,
                warm,
                c.neighbors,
                c.temperature,
                keep,
                c.ann_above,
            )
            return with_cold_columns(out, near, warm)
        return propagate_to_cold(weights, text_vectors, warm, c.neighbors, c.temperature)


#: the first-items map's peak memory per items x items cell (its float32 map and the float64
#: Gram matrix and right-hand side of its solve, at most)
PREFIX_BYTES_PER_CELL = 20.0

#: rows whose short-history prior weight is below this skip it (about 75 or more history items
#: with the default prior_weight and prior_shrink)
PRIOR_CUTOFF = 1e-9


class ShortHistory:
    """The prior for short histories: z-scored log popularity ``prior_`` (an empty history's
    co-occurrence row) and the first-items ridge map ``short_`` (None when off)."""

    name = "short_history"

    def __init__(self, config: ShortHistoryConfig):
        self.config = config
        self.prior_: np.ndarray | None = None
        self.short_: np.ndarray | None = None

    def fit(self, data: TrainData, counts: np.ndarray) -> None:
        c = self.config
        self.set_counts(counts)
        self.short_ = None
        n = data.matrix.shape[1]
        if (
            c.prefix > 0
            and data.recency is not None
            and n <= c.max_items
            and fits_dense(n, PREFIX_BYTES_PER_CELL)
        ):
            from avrec.models.hybrid.prefix import prefix_weights

            self.short_ = prefix_weights(data.matrix, data.recency, c.prefix, c.l2)

    def set_counts(self, counts: np.ndarray) -> None:
        """The popularity prior from the items' training counts."""
        self.prior_ = zscore_rows(np.log1p(counts).astype(np.float32), floor=1e-9)

    def cooccurrence(self, train: sp.csr_matrix, histories: sp.csr_matrix) -> np.ndarray:
        """Per-row z-scored co-occurrence counts of each item with the history's items (an
        empty history: item popularity, z-scored)."""
        x = (train > 0).astype(np.float32)
        h = (histories > 0).astype(np.float32)
        co = np.asarray(((h @ x.T) @ x).todense(), dtype=np.float32)
        if h.nnz:  # a history item does not co-occur with itself
            co -= np.asarray(h.multiply(np.asarray(x.sum(axis=0))).todense(), dtype=np.float32)
        empty = np.diff(h.indptr) == 0
        co[empty] = self.prior_
        return zscore_rows(co)

    def add(
        self, scores: np.ndarray, collab: np.ndarray, train: sp.csr_matrix, histories: sp.csr_matrix
    ) -> None:
        """Add the prior to ``scores`` in place, faded by history length."""
        c = self.config
        n_hist = np.diff(histories.indptr).astype(np.float32)
        fade = c.prior_weight * np.exp(-np.maximum(n_hist - 1, 0) / c.prior_shrink)
        # the prior has faded out of long histories (PRIOR_CUTOFF: far below float32
        # resolution of the scores); only the other rows pay for the co-occurrence products
        rows = np.flatnonzero(fade > PRIOR_CUTOFF)
        if not len(rows):
            return
        sub = histories[rows] if len(rows) < len(fade) else histories
        sd = collab[rows].std(axis=1, keepdims=True)
        prior = self.cooccurrence(train, sub)
        if self.short_ is not None:
            prior = prior + zscore_rows(np.asarray((sub > 0).astype(np.float32) @ self.short_))
        scores[rows] += (fade[rows, None] * np.where(sd > 0, sd, 1.0)) * prior

    def extend(self, n_new: int) -> None:
        prior = _fitted(self.prior_, "short-history prior")
        n_old = len(prior)
        self.prior_ = np.concatenate([prior, np.full(n_new - n_old, prior.min(), np.float32)])
        if self.short_ is not None:  # new items: no first-choice evidence either way
            short = np.zeros((n_new, n_new), dtype=np.float32)
            short[:n_old, :n_old] = self.short_
            self.short_ = short

    def state(self) -> dict[str, np.ndarray]:
        prior = _fitted(self.prior_, "short-history prior")
        return {"prior": prior, **({"short": self.short_} if self.short_ is not None else {})}

    def set_state(self, state: dict[str, np.ndarray], n_items: int) -> None:
        self.prior_ = state.get("prior", np.zeros(n_items, np.float32))
        self.short_ = state.get("short")


class VAEBlend:
    """A Mult-VAE beside the backbone (``params_``: its arrays and the ``warm`` mask of the
    items it was trained on)."""

    name = "vae"

    def __init__(self, config: VAEBlendConfig):
        self.config = config
        self.params_: dict[str, np.ndarray] | None = None

    def fit(
        self, matrix: sp.csr_matrix, warm: np.ndarray, seed: int, capped: list[str] | None = None
    ) -> None:
        """``capped``: gets a note if a wall-clock cap in the settings stopped training."""
        from avrec.models.neural.vae import VAEConfig, train_multvae

        self.params_ = train_multvae(
            matrix, VAEConfig(**{"seed": seed, **self.config.settings}), capped
        )
        self.params_["warm"] = warm.copy()

    def fine_tune(self, matrix: sp.csr_matrix, warm: np.ndarray, seed: int, epochs: int) -> None:
        """A warm start: ``epochs`` more epochs on ``matrix`` from the fitted weights (the
        items warm in ``matrix`` join those it was trained on)."""
        from avrec.models.neural.vae import VAEConfig, train_multvae

        start = _fitted(self.params_, "VAE")
        settings = {"seed": seed, **self.config.settings, "epochs": epochs}
        self.params_ = train_multvae(matrix, VAEConfig(**settings), None, start)
        self.params_["warm"] = warm | start["warm"].astype(bool)

    @property
    def warm(self) -> np.ndarray:
        """Items the VAE saw in training (the others get the hybrid's score alone)."""
        return _fitted(self.params_, "VAE")["warm"].astype(bool)

    def parts(
        self, histories: sp.csr_matrix, pre: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The VAE's logits, their per-row mean and spread over the VAE's warm items
        (``pre``: the histories' :func:`models.vae.encoder_state`, when already computed)."""
        from avrec.models.neural.vae import decode, logits

        params = _fitted(self.params_, "VAE")
        v = logits(params, histories) if pre is None else decode(params, pre)
        mu, sd = row_moments(v[:, self.warm])
        return v, mu, sd

    def weights(self, histories: sp.csr_matrix) -> np.ndarray:
        """``[n, 1]``: the VAE's weight for each history (``weight``, ramped by length)."""
        lo, hi = self.config.ramp
        n = np.diff(histories.indptr).astype(np.float32)
        ramp = np.clip((n - lo) / max(hi - lo, 1), 0.0, 1.0)
        return (self.config.weight * ramp)[:, None]

    def blend(
        self, scores: np.ndarray, histories: sp.csr_matrix, memo: dict | None = None
    ) -> np.ndarray:
        """``z(scores) + w * z(vae)`` on the VAE's warm items, ``(1 + w) * z(scores)`` elsewhere
        (``memo``: receives what explanations of this batch reuse)."""
        from avrec.models.neural.vae import encoder_state

        w = self.weights(histories)
        zs = zscore_rows(scores)
        pre, inv = encoder_state(_fitted(self.params_, "VAE"), histories)
        v, mu, sd = self.parts(histories, pre)
        if memo is not None:
            memo.update(pre=pre, inv=inv, sd_v=sd[:, 0], a=w[:, 0])
        warm = self.warm
        out = (1.0 + w) * zs
        out[:, warm] = zs[:, warm] + w * (v[:, warm] - mu) / sd
        return out

    def extend(self, n_new: int) -> None:
        from avrec.models.neural.vae import grow_items

        self.params_ = grow_items(_fitted(self.params_, "VAE"), n_new)

    def state(self) -> dict[str, np.ndarray]:
        return dict(_fitted(self.params_, "VAE"))

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.params_ = dict(state)


class ColdRanker:
    """A LightGBM LambdaRank model of the cold items (``booster_``) and the item signals it
    reads (``signals_``), from simulated cold start over the warm items."""

    name = "cold_ranker"

    def __init__(self, config: ColdRankerConfig):
        self.config = config
        self.booster_: Any = None  # a lightgbm Booster once fitted or loaded
        self.signals_: dict[str, np.ndarray] | None = None

    def wanted(self, warm: np.ndarray) -> bool:
        c = self.config
        return (
            0 < c.share <= (~warm).mean() and warm.sum() >= 2 * c.folds and len(warm) <= c.max_items
        )

    def fit(
        self,
        fit_sub: Callable[[TrainData], Any],
        data: TrainData,
        text_vectors: np.ndarray,
        cold: np.ndarray,
        seed: int,
    ) -> None:
        """``fit_sub``: fits a sub-model like the hybrid (without its own ranker) on a view."""
        from avrec.models.hybrid.coldrank import fit_for

        c = self.config
        self.booster_, self.signals_ = fit_for(
            fit_sub, data, text_vectors, cold, c.folds, c.trees, seed
        )

    def state(self) -> dict[str, np.ndarray]:
        model = _fitted(self.booster_, "cold ranker").model_to_string().encode()
        signals = _fitted(self.signals_, "cold ranker")
        return {
            "booster": np.frombuffer(model, np.uint8),
            **{f"signal_{k}": v for k, v in signals.items()},
        }

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        import lightgbm as lgb

        self.booster_ = lgb.Booster(model_str=state["booster"].tobytes().decode())
        self.signals_ = {
            k.removeprefix("signal_"): v for k, v in state.items() if k.startswith("signal_")
        }
