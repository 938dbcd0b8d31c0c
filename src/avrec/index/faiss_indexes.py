"""faiss-backed indexes (inner product on L2-normalised vectors = cosine): exact flat, HNSW
and IVF. All use one OpenMP thread by default: a server answers requests concurrently, and
more threads per query only oversubscribe the cores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _faiss(threads: int):
    import faiss

    faiss.omp_set_num_threads(threads)
    return faiss


def _as_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise ValueError(f"expected vectors of shape [n, {dim}], got {vectors.shape}")
    return vectors


class FaissIndex:
    """Common part: ``add``, ``search``, ``save``/``load`` (faiss's own binary format)."""

    kind = "faiss"

    def __init__(self, dim: int, threads: int = 1):
        self.dim = dim
        self.threads = threads
        self.index: Any = None  # the faiss index, once built or loaded

    def __len__(self) -> int:
        return int(self.index.ntotal) if self.index is not None else 0

    def add(self, vectors: np.ndarray) -> None:
        self.index.add(_as_matrix(vectors, self.dim))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = _as_matrix(np.atleast_2d(queries), self.dim)
        k = min(k, len(self))
        if k <= 0:
            return np.zeros((len(q), 0), np.int64), np.zeros((len(q), 0), np.float32)
        scores, idx = self.index.search(q, k)
        return idx.astype(np.int64), scores.astype(np.float32)

    def save(self, path: str | Path) -> None:
        _faiss(self.threads).write_index(self.index, str(path))

    def load_native(self, path: str | Path) -> None:
        self.index = _faiss(self.threads).read_index(str(path))
        if self.index.d != self.dim:
            raise ValueError(f"{path}: index has dimension {self.index.d}, expected {self.dim}")


class FlatIndex(FaissIndex):
    """Exact search with faiss ``IndexFlatIP`` (brute force, SIMD)."""

    kind = "flat"

    def __init__(self, dim: int, threads: int = 1):
        super().__init__(dim, threads)
        self.index = _faiss(threads).IndexFlatIP(dim)


class HNSWIndex(FaissIndex):
    """Approximate: a navigable small-world graph (``IndexHNSWFlat``). ``ef_search`` trades
    recall for speed at query time."""

    kind = "hnsw"

    def __init__(
        self,
        dim: int,
        m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        threads: int = 1,
    ):
        super().__init__(dim, threads)
        faiss = _faiss(threads)
        self.index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = ef_construction
        self.index.hnsw.efSearch = ef_search

    def set_ef_search(self, ef: int) -> None:
        self.index.hnsw.efSearch = ef


class IVFIndex(FaissIndex):
    """Approximate: inverted lists over k-means cells (``IndexIVFFlat``); trained on the first
    ``add`` (a sample of at most ``train_size`` vectors). ``nprobe`` cells are scanned per
    query. ``nlist`` defaults to about sqrt(n) at training time (cheap to build on few cores;
    raise it, and ``nprobe`` with it, for larger catalogs)."""

    kind = "ivf"

    def __init__(
        self,
        dim: int,
        nlist: int | None = None,
        nprobe: int = 16,
        train_size: int = 50_000,
        seed: int = 0,
        threads: int = 1,
    ):
        super().__init__(dim, threads)
        self.nlist, self.nprobe, self.train_size, self.seed = nlist, nprobe, train_size, seed

    def add(self, vectors: np.ndarray) -> None:
        vectors = _as_matrix(vectors, self.dim)
        if self.index is None:
            self._train(vectors)
        self.index.add(vectors)

    def _train(self, vectors: np.ndarray) -> None:
        faiss = _faiss(self.threads)
        nlist = self.nlist or int(max(1, min(65_536, np.sqrt(len(vectors)))))
        nlist = min(nlist, len(vectors))
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(self.seed)
        take = rng.choice(
            len(vectors), min(len(vectors), max(self.train_size, 39 * nlist)), replace=False
        )
        index.cp.seed = self.seed
        index.train(vectors[np.sort(take)])
        index.nprobe = self.nprobe
        self.index, self.nlist = index, nlist
        self._quantizer = quantizer  # faiss does not own it from Python: keep it alive

    def set_nprobe(self, nprobe: int) -> None:
        self.nprobe = nprobe
        if self.index is not None:
            self.index.nprobe = nprobe

    def load_native(self, path: str | Path) -> None:
        super().load_native(path)
        self.index.nprobe = self.nprobe
        self.nlist = int(self.index.nlist)
