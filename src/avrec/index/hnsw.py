"""Approximate nearest neighbours with faiss HNSW (inner product)."""

from __future__ import annotations

import numpy as np


class HNSWIndex:
    def __init__(self, dim: int, m: int = 32, ef_construction: int = 80, ef_search: int = 128,
                 threads: int = 1):
        import faiss

        faiss.omp_set_num_threads(threads)
        self.dim = dim
        self.index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = ef_construction
        self.index.hnsw.efSearch = ef_search

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape [n, {self.dim}], got {vectors.shape}")
        self.index.add(vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        scores, idx = self.index.search(q, min(k, len(self)))
        return idx.astype(np.int64), scores.astype(np.float32)
