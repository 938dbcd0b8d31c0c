"""Vocabulary: external string IDs <-> dense integer indices, saved with every artifact."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np


class Vocabulary:
    """An ordered, immutable mapping of external IDs (strings) to 0..n-1."""

    def __init__(self, ids: Iterable[str]):
        self._ids = np.asarray([str(i) for i in ids], dtype=object)
        self._index = {i: n for n, i in enumerate(self._ids)}
        if len(self._index) != len(self._ids):
            raise ValueError("vocabulary IDs must be unique")

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and list(self._ids) == list(other._ids)

    @property
    def ids(self) -> np.ndarray:
        """The external IDs, in index order (object array of str)."""
        return self._ids

    def index(self, key: str) -> int:
        """Index of one ID; ``KeyError`` naming it if unknown."""
        try:
            return self._index[key]
        except KeyError:
            raise KeyError(f"unknown id {key!r}") from None

    def __getitem__(self, key: str) -> int:
        return self.index(key)

    def get(self, key: str, default: int | None = None) -> int | None:
        """Index of one ID, ``default`` if unknown."""
        return self._index.get(key, default)

    def lookup(self, keys: Sequence[str], missing: int = -1) -> np.ndarray:
        """Indices of many IDs, ``missing`` where unknown."""
        get = self._index.get
        return np.fromiter((get(str(k), missing) for k in keys), dtype=np.int64, count=len(keys))

    def to_json(self) -> list[str]:
        return [str(i) for i in self._ids]

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()))

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        return cls(json.loads(Path(path).read_text()))
