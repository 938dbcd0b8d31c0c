"""Kept for imports of ``avrec.index.hnsw.HNSWIndex``; the faiss indexes live in
:mod:`avrec.index.faiss_indexes`."""

from avrec.index.faiss_indexes import HNSWIndex

__all__ = ["HNSWIndex"]
