"""Vector indexes behind one interface: exact (numpy, faiss flat) and approximate (faiss HNSW,
IVF), with persistence and recall measured against exact."""

from avrec.index.base import (
    KINDS,
    ExactIndex,
    VectorIndex,
    load_index,
    load_or_build,
    make_index,
    recall_at_k,
    save_index,
)

__all__ = [
    "KINDS",
    "ExactIndex",
    "VectorIndex",
    "load_index",
    "load_or_build",
    "make_index",
    "recall_at_k",
    "save_index",
]
