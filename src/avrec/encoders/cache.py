"""Embedding cache keyed by (encoder name, version, content hash): a second run over an
unchanged catalog does no model work. Stored as append-only ``.npz`` shards per encoder under
``$AVREC_HOME/cache/embeddings`` (each finished batch is a shard, so an interrupted run resumes)."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np

from avrec.settings import avrec_home


def content_key(payload: str | bytes) -> str:
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    return hashlib.sha256(data).hexdigest()


class EmbeddingCache:
    def __init__(self, encoder_key: str, root: Path | None = None):
        safe = encoder_key.replace("/", "_").replace("@", "__")
        self.dir = (root or avrec_home() / "cache" / "embeddings") / safe
        self.dir.mkdir(parents=True, exist_ok=True)
        self._vectors: dict[str, np.ndarray] = {}
        for shard in sorted(self.dir.glob("*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as z:
                    for key, vec in zip(z["keys"], z["vectors"], strict=True):
                        self._vectors[str(key)] = vec
            except (OSError, ValueError, KeyError):
                shard.unlink(missing_ok=True)  # a torn write from an interrupted run

    def __len__(self) -> int:
        return len(self._vectors)

    def get(self, key: str) -> np.ndarray | None:
        return self._vectors.get(key)

    def put_many(self, keys: list[str], vectors: np.ndarray) -> None:
        if not keys:
            return
        tmp = self.dir / f".{uuid.uuid4().hex}.tmp.npz"
        np.savez(tmp, keys=np.asarray(keys), vectors=np.asarray(vectors, dtype=np.float32))
        os.replace(tmp, self.dir / f"{uuid.uuid4().hex}.npz")
        for key, vec in zip(keys, vectors, strict=True):
            self._vectors[key] = np.asarray(vec, dtype=np.float32)
