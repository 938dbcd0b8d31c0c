"""The vector index interface (inner product on L2-normalised vectors = cosine), the exact
numpy implementation, a factory over all kinds, persistence and recall against exact.

``search`` takes a batch of queries ``[n, d]`` and returns row indices ``int64 [n, k]`` and
scores ``float32 [n, k]``, best first. Kinds: ``exact`` (blocked numpy), ``flat`` (faiss
exact), ``hnsw`` and ``ivf`` (faiss approximate)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Protocol

import numpy as np

KINDS = ("exact", "flat", "hnsw", "ivf")
MANIFEST = "index.json"


class VectorIndex(Protocol):
    dim: int
    kind: str

    def add(self, vectors: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def __len__(self) -> int: ...

    def save(self, path: str | Path) -> None: ...

    def load_native(self, path: str | Path) -> None: ...


class ExactIndex:
    """Brute-force inner product over all rows (blocked, so memory stays bounded)."""

    kind = "exact"

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
            self._matrix = (
                np.concatenate(self._parts) if self._parts else np.zeros((0, self.dim), np.float32)
            )
            self._parts = [self._matrix]
        return self._matrix

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"expected queries of shape [n, {self.dim}], got {q.shape}")
        m = self.matrix
        k = min(k, len(m))
        if k <= 0:
            return np.zeros((len(q), 0), np.int64), np.zeros((len(q), 0), np.float32)
        best_i = np.zeros((len(q), 0), np.int64)
        best_s = np.zeros((len(q), 0), np.float32)
        for start in range(0, len(m), self.block):
            s = q @ m[start : start + self.block].T
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

    def save(self, path: str | Path) -> None:
        with open(path, "wb") as fh:
            np.save(fh, self.matrix, allow_pickle=False)

    def load_native(self, path: str | Path) -> None:
        self._parts, self._matrix = [np.load(path, allow_pickle=False)], None


def make_index(kind: str, dim: int, **options) -> VectorIndex:
    """A new, empty index of ``kind`` (one of :data:`KINDS`)."""
    if kind == "exact":
        return ExactIndex(dim, **options)
    from avrec.index import faiss_indexes as fi

    classes = {"flat": fi.FlatIndex, "hnsw": fi.HNSWIndex, "ivf": fi.IVFIndex}
    if kind not in classes:
        raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    return classes[kind](dim, **options)


def fingerprint(vectors: np.ndarray) -> str:
    """Cheap identity of a vector matrix: shape plus a hash of a strided sample of rows."""
    import hashlib

    step = max(1, len(vectors) // 4096)
    sample = np.ascontiguousarray(vectors[::step], dtype=np.float32)
    digest = hashlib.blake2b(sample.tobytes(), digest_size=16).hexdigest()
    return f"{vectors.shape[0]}x{vectors.shape[1]}:{digest}"


def save_index(
    index: VectorIndex,
    folder: str | Path,
    vectors_fingerprint: str | None = None,
    options: dict | None = None,
) -> Path:
    """A folder with ``index.json`` (kind, dim, size, options, fingerprint) and the data."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    index.save(folder / "index.bin")
    (folder / MANIFEST).write_text(
        json.dumps(
            {
                "kind": index.kind,
                "dim": index.dim,
                "size": len(index),
                "options": options or {},
                "fingerprint": vectors_fingerprint,
            },
            indent=2,
        )
    )
    return folder


def load_index(folder: str | Path) -> tuple[VectorIndex, dict]:
    folder = Path(folder)
    manifest_file = folder / MANIFEST
    if not manifest_file.is_file():
        raise FileNotFoundError(f"{folder}: not a saved index (no {MANIFEST})")
    manifest = json.loads(manifest_file.read_text())
    index = make_index(manifest["kind"], manifest["dim"], **manifest.get("options", {}))
    index.load_native(folder / "index.bin")
    if len(index) != manifest["size"]:
        raise ValueError(
            f"{folder}: index holds {len(index)} vectors, manifest says {manifest['size']}"
        )
    return index, manifest


#: options that change only how a built index is searched (applied after loading)
SEARCH_OPTIONS = ("nprobe", "ef_search")


def load_or_build(
    vectors: np.ndarray, kind: str, folder: str | Path | None = None, **options
) -> VectorIndex:
    """The index of ``vectors``: loaded from ``folder`` when it was built from the same vectors
    (same fingerprint) with the same kind (and the same build options, where any are given),
    else built (and saved there). Search options (``nprobe``, ``ef_search``) apply either way."""
    fp = fingerprint(vectors)
    build = {k: v for k, v in options.items() if k not in SEARCH_OPTIONS}
    search = {k: v for k, v in options.items() if k in SEARCH_OPTIONS}
    if folder is not None and (Path(folder) / MANIFEST).is_file():
        try:
            index, manifest = load_index(folder)
            saved = {k: v for k, v in manifest["options"].items() if k not in SEARCH_OPTIONS}
            if (manifest["kind"], manifest["fingerprint"]) == (kind, fp) and (
                not build or build == saved
            ):
                _apply_search_options(index, search)
                return index
        except (OSError, ValueError, RuntimeError, KeyError):
            pass  # stale or unreadable: rebuild below
    index = make_index(kind, vectors.shape[1], **options)
    index.add(vectors)
    if folder is not None:
        # a read-only model folder: the index is rebuilt at the next start
        with contextlib.suppress(OSError):
            save_index(index, folder, fp, build)
    return index


def _apply_search_options(index: VectorIndex, search: dict) -> None:
    if "nprobe" in search and hasattr(index, "set_nprobe"):
        index.set_nprobe(search["nprobe"])
    if "ef_search" in search and hasattr(index, "set_ef_search"):
        index.set_ef_search(search["ef_search"])


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact top-k that the approximate index also returned."""
    hits = sum(len(set(a) & set(e)) for a, e in zip(approx, exact, strict=True))
    return hits / exact.size if exact.size else 1.0
