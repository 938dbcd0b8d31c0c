"""The vector index interface (inner product on L2-normalised vectors = cosine) and the exact
implementation. ``search`` takes a batch of queries and returns row indices and scores."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class VectorIndex(Protocol):
    dim: int

    def add(self, vectors: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def __len__(self) -> int: ...


class ExactIndex:
    """Brute-force inner product over all rows (blocked, so memory stays bounded)."""

    def __init__(self, dim: int, block: int = 262_144):
        self.dim = dim
        self.block = block
        self._parts: list[np.ndarray] = []
        self._matrix: np.ndarray | None = None

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)

    def add(self, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape [n, {self.dim}], got {vectors.shape}")
        self._parts.append(vectors)
        self._matrix = None

    @property
    def matrix(self) -> np.ndarray:
        if self._matrix is None:
            self._matrix = (np.concatenate(self._parts) if self._parts
                            else np.zeros((0, self.dim), np.float32))
            self._parts = [self._matrix]
        return self._matrix

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        m = self.matrix
        k = min(k, len(m))
        best_i = np.zeros((len(q), 0), np.int64)
        best_s = np.zeros((len(q), 0), np.float32)
        for start in range(0, len(m), self.block):
            s = q @ m[start:start + self.block].T
            kk = min(k, s.shape[1])
            part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
            best_i = np.concatenate([best_i, part + start], axis=1)
            best_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
            if best_i.shape[1] > k:
                keep = np.argpartition(-best_s, k - 1, axis=1)[:, :k]
                best_i = np.take_along_axis(best_i, keep, 1)
                best_s = np.take_along_axis(best_s, keep, 1)
        order = np.argsort(-best_s, axis=1, kind="stable")
        return np.take_along_axis(best_i, order, 1), np.take_along_axis(best_s, order, 1)


def make_index(kind: str, dim: int, **options) -> VectorIndex:
    """``"exact"`` or ``"hnsw"`` (faiss)."""
    if kind == "exact":
        return ExactIndex(dim, **options)
    if kind == "hnsw":
        from avrec.index.hnsw import HNSWIndex

        return HNSWIndex(dim, **options)
    raise ValueError(f"unknown index kind {kind!r}; choose exact or hnsw")


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact top-k that the approximate index also returned."""
    hits = sum(len(set(a) & set(e)) for a, e in zip(approx, exact, strict=True))
    return hits / exact.size if exact.size else 1.0
