"""Vector indexes behind one interface: exact (numpy) and approximate (faiss HNSW)."""

from avrec.index.base import ExactIndex, VectorIndex, make_index

__all__ = ["ExactIndex", "VectorIndex", "make_index"]
