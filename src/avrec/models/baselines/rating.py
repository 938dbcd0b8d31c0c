"""Explicit-rating prediction: baseline biases + item-kNN on residuals + a biased matrix
factorisation of the residuals (ALS), blended. ``predict(user_ids, item_ids)``; ranks by
predicted rating.

    r̂(u, i) = μ + b_u + b_i + knn_weight · Σ_j s_ij (r_uj − b_uj) / Σ_j |s_ij| + p_u · q_i
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from avrec.models.arrays import row_blocks
from avrec.models.base import ModelConfig, Recommender, TrainData
from avrec.models.baselines.bias import Bias, BiasConfig
from avrec.models.memory import require_dense


class RatingConfig(ModelConfig):
    neighbors: int = 40
    shrink: float = 100.0
    knn_weight: float = 1.0
    factors: int = 64
    mf_reg: float = 15.0
    mf_iterations: int = 15
    clip_min: float | None = None
    clip_max: float | None = None
    #: "mean" minimises squared error (RMSE); "median" moves each prediction towards the
    #: nearest rating level seen in training by ``snap`` (absolute error is minimised by the
    #: median, which for a discrete scale is one of its levels)
    output: str = "median"
    snap: float = 0.7


#: fit's peak memory per items x items cell: the float32 similarity and, per block of rows,
#: a few float64 temporaries (measured on ml-latest-small by models.memory.PeakMemory: 5.7;
#: 44 before the similarity was built in blocks)
PEAK_BYTES_PER_CELL = 6.0


def _shrunk_pearson(res: sp.csr_matrix, shrink: float) -> np.ndarray:
    """Float32 item-item similarity of residuals (cosine over co-rating users, shrunk by
    support), computed a block of rows at a time in float64."""
    r = res.tocsc()
    b = (r != 0).astype(np.float64)
    sq = r.multiply(r).tocsc()
    rt, bt, sqt = r.T.tocsr(), b.T.tocsr(), sq.T.tocsr()
    n = r.shape[1]
    sim = np.empty((n, n), np.float32)
    for rows in row_blocks(n, 256):  # float64 temporaries of 256 rows: small beside sim
        dot = (rt[rows] @ r).toarray()
        norm_i = (sqt[rows] @ b).toarray()  # sum over co-raters of r_ui^2, per (i, j)
        norm_j = (bt[rows] @ sq).toarray()  # the same for r_uj^2
        support = (bt[rows] @ b).toarray()
        block = dot / (np.sqrt(norm_i * norm_j) + 1e-9)
        block *= support / (support + shrink)
        sim[rows] = block
    np.fill_diagonal(sim, 0.0)
    return sim


class Rating(Recommender):
    name = "rating"
    Config = RatingConfig
    config: RatingConfig

    def _fit(self, data: TrainData) -> None:
        if data.ratings is None or data.ratings.nnz == 0:
            raise ValueError("the rating model needs explicit ratings")
        self.bias = Bias(BiasConfig()).fit(data)
        r = data.ratings.tocoo()
        base = self.bias.mean + self.bias.user_bias[r.row] + self.bias.item_bias[r.col]
        res = sp.csr_matrix((r.data - base, (r.row, r.col)), shape=data.ratings.shape)
        self.residuals = res
        require_dense(self.name, res.shape[1], PEAK_BYTES_PER_CELL, alternatives=("bias",))
        self.similarity = _shrunk_pearson(res, self.config.shrink)
        knn = self._knn_terms(r.row, r.col)
        left = sp.csr_matrix(
            (r.data - base - self.config.knn_weight * knn, (r.row, r.col)), shape=data.ratings.shape
        )
        self.user_f, self.item_f = self._als(left, data.ratings.shape)
        self.levels = np.unique(r.data).astype(np.float32)
        lo, hi = float(r.data.min()), float(r.data.max())
        self.clip = (
            self.config.clip_min if self.config.clip_min is not None else lo,
            self.config.clip_max if self.config.clip_max is not None else hi,
        )

    def _als(self, target: sp.csr_matrix, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.config.seed)
        f, reg = self.config.factors, self.config.mf_reg
        p = rng.normal(0, 0.1, (shape[0], f))
        q = rng.normal(0, 0.1, (shape[1], f))
        t, tt = target.tocsr(), target.T.tocsr()
        eye = reg * np.eye(f)
        for _ in range(self.config.mf_iterations):
            for mat, x, y in ((t, p, q), (tt, q, p)):
                for u in range(mat.shape[0]):
                    idx = mat.indices[mat.indptr[u] : mat.indptr[u + 1]]
                    if len(idx) == 0:
                        x[u] = 0
                        continue
                    yy = y[idx]
                    x[u] = np.linalg.solve(
                        yy.T @ yy + eye, yy.T @ mat.data[mat.indptr[u] : mat.indptr[u + 1]]
                    )
        return p.astype(np.float32), q.astype(np.float32)

    def _knn_terms(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        res = self.residuals
        out = np.zeros(len(users), dtype=np.float64)
        k = self.config.neighbors
        for n, (u, i) in enumerate(zip(users, items, strict=True)):
            if u < 0 or i < 0:
                continue
            idx = res.indices[res.indptr[u] : res.indptr[u + 1]]
            vals = res.data[res.indptr[u] : res.indptr[u + 1]]
            keep = idx != i
            idx, vals = idx[keep], vals[keep]
            if not len(idx):
                continue
            s = self.similarity[i, idx]
            if len(s) > k:
                top = np.argpartition(-np.abs(s), k - 1)[:k]
                s, vals = s[top], vals[top]
            denom = np.abs(s).sum()
            out[n] = (s * vals).sum() / denom if denom > 0 else 0.0
        return out

    def predict(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        user_vocab, item_vocab, _ = self.fitted_parts()
        u = user_vocab.lookup(list(user_ids))
        i = item_vocab.lookup(list(item_ids))
        pred = self.bias.predict(user_ids, item_ids).astype(np.float64)
        pred += self.config.knn_weight * self._knn_terms(u, i)
        ok = (u >= 0) & (i >= 0)
        pred[ok] += np.einsum("ij,ij->i", self.user_f[u[ok]], self.item_f[i[ok]])
        pred = np.clip(pred, *self.clip)
        if self.config.output == "median" and len(self.levels):
            nearest = self.levels[np.abs(pred[:, None] - self.levels[None, :]).argmin(axis=1)]
            pred = pred + self.config.snap * (nearest - pred)
        return pred.astype(np.float32)

    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        known = np.where(users >= 0, users, 0)
        s = self.bias.mean + self.bias.item_bias[None, :] + (self.user_f[known] @ self.item_f.T)
        s = s + np.where(users >= 0, self.bias.user_bias[known], 0)[:, None]
        return s.astype(np.float32)

    def state_arrays(self) -> dict[str, np.ndarray]:
        res = self.residuals.tocsr()
        return {
            "user_bias": self.bias.user_bias,
            "item_bias": self.bias.item_bias,
            "mean": np.array([self.bias.mean]),
            "similarity": self.similarity,
            "res_data": res.data,
            "res_indices": res.indices,
            "res_indptr": res.indptr,
            "user_f": self.user_f,
            "item_f": self.item_f,
            "clip": np.array(self.clip),
            "levels": self.levels,
        }

    def load_state_arrays(self, state, path) -> None:
        self.bias = Bias(BiasConfig())
        self.bias.user_vocab, self.bias.item_vocab = self.user_vocab, self.item_vocab
        user_vocab, item_vocab, _ = self.fitted_parts()
        self.bias.load_state_arrays(state, path)
        self.similarity = state["similarity"]
        self.residuals = sp.csr_matrix(
            (state["res_data"], state["res_indices"], state["res_indptr"]),
            shape=(len(user_vocab), len(item_vocab)),
        )
        self.user_f, self.item_f = state["user_f"], state["item_f"]
        lo, hi = (float(v) for v in state["clip"])
        self.clip = (lo, hi)
        self.levels = state["levels"]
