"""Item-kNN: cosine similarity between items' user vectors, with shrinkage and top-k pruning."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from avrec.models.arrays import row_blocks
from avrec.models.base import ModelConfig, Recommender, TrainData


class ItemKNNConfig(ModelConfig):
    neighbors: int = 100
    shrink: float = 10.0
    #: exponent applied to similarities (>1 sharpens towards the nearest neighbours)
    alpha: float = 1.0


def prune_top_k(sim: np.ndarray, k: int) -> sp.csr_matrix:
    """Keep each row's ``k`` largest entries (a sparse matrix of ``sim``'s shape)."""
    n = sim.shape[0]
    k = min(k, sim.shape[1])
    idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(sim, idx, axis=1)
    rows = np.repeat(np.arange(n), k)
    out = sp.csr_matrix((vals.ravel(), (rows, idx.ravel())), shape=sim.shape)
    out.eliminate_zeros()
    return out


class ItemKNN(Recommender):
    name = "itemknn"
    Config = ItemKNNConfig
    config: ItemKNNConfig

    def _fit(self, data: TrainData) -> None:
        x = (data.matrix > 0).astype(np.float32).tocsc()
        xt = x.T.tocsr()
        n = x.shape[1]
        norms = np.sqrt(
            np.asarray(x.sum(axis=0), np.float32).ravel()
        )  # sqrt of co-occurrence's diagonal
        pruned = []
        # a block of rows of the (symmetric) similarity matrix at a time, each pruned to its
        # top k: memory grows with the block, not with the square of the catalog
        for rows in row_blocks(n, 512):
            co = (xt[rows] @ x).toarray()
            sim = co / (np.outer(norms[rows], norms) + self.config.shrink + 1e-9)
            sim[np.arange(len(co)), np.arange(rows.start, rows.stop)] = 0.0
            if self.config.alpha != 1.0:
                sim = np.power(sim, self.config.alpha)
            pruned.append(prune_top_k(sim, self.config.neighbors))
        # neighbours of the item being scored: column j holds j's top-k similar items (row j of
        # the pruned matrix: the similarity is symmetric)
        self.similarity = sp.vstack(pruned).T.tocsr().astype(np.float32)

    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        h = (histories > 0).astype(np.float32)
        return np.asarray((h @ self.similarity).toarray(), dtype=np.float32)

    def contributions(
        self, history: sp.csr_matrix, items: np.ndarray, user: int = -1
    ) -> np.ndarray:
        return self.similarity[history.indices][:, items].toarray().T

    def state_arrays(self) -> dict[str, np.ndarray]:
        s = self.similarity.tocsr()
        return {
            "sim_data": s.data,
            "sim_indices": s.indices,
            "sim_indptr": s.indptr,
            "sim_shape": np.array(s.shape),
        }

    def load_state_arrays(self, state, path) -> None:
        self.similarity = sp.csr_matrix(
            (state["sim_data"], state["sim_indices"], state["sim_indptr"]),
            shape=tuple(state["sim_shape"]),
        )
