"""Embedding cache keyed by (encoder name, version, content hash): a second run over an
unchanged catalog does no model work. Stored as append-only ``.npz`` shards per encoder under
``$AVREC_HOME/cache/embeddings`` (each finished batch is a shard, so an interrupted run resumes).

Besides the vector, an entry may hold readable attributes (labels, OCR text, transcript) as a
JSON string, so that a cache hit gives back everything the model produced. No pickle."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import zipfile
from pathlib import Path

import numpy as np

from avrec.settings import avrec_home

MAX_SHARDS = 64  # compacted into one shard past this, so loading stays fast


def content_key(payload: str | bytes) -> str:
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    return hashlib.sha256(data).hexdigest()


def file_key(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes (the cache key for media)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class EmbeddingCache:
    def __init__(self, encoder_key: str, root: Path | None = None):
        safe = encoder_key.replace("/", "_").replace("@", "__")
        self.dir = (root or avrec_home() / "cache" / "embeddings") / safe
        self.dir.mkdir(parents=True, exist_ok=True)
        self._vectors: dict[str, np.ndarray] = {}
        self._attrs: dict[str, str] = {}
        shards = sorted(self.dir.glob("*.npz"))
        for shard in shards:
            try:
                with np.load(shard, allow_pickle=False) as z:
                    keys = [str(k) for k in z["keys"]]
                    for key, vec in zip(keys, z["vectors"], strict=True):
                        self._vectors[key] = vec
                    if "attrs" in z.files:
                        self._attrs.update(zip(keys, (str(a) for a in z["attrs"]), strict=True))
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                shard.unlink(missing_ok=True)  # a torn write from an interrupted run
        if len(shards) > MAX_SHARDS:
            self._compact(shards)

    def __len__(self) -> int:
        return len(self._vectors)

    def __contains__(self, key: str) -> bool:
        return key in self._vectors

    def get(self, key: str) -> np.ndarray | None:
        return self._vectors.get(key)

    def get_attrs(self, key: str) -> dict | None:
        raw = self._attrs.get(key)
        return json.loads(raw) if raw else None

    def meta(self, key: str) -> str | None:
        """The entry's attributes as the stored JSON string (None when it has none)."""
        return self._attrs.get(key) or None

    def _write(self, keys: list[str], vectors: np.ndarray, attrs: list[str] | None) -> None:
        tmp = self.dir / f".{uuid.uuid4().hex}.tmp.npz"
        arrays = {"keys": np.asarray(keys), "vectors": np.asarray(vectors, dtype=np.float32)}
        if attrs is not None:
            arrays["attrs"] = np.asarray(attrs, dtype=str)
        np.savez(tmp, **arrays)
        os.replace(tmp, self.dir / f"{uuid.uuid4().hex}.npz")

    def put_many(self, keys: list[str], vectors: np.ndarray,
                 attrs: list[dict] | list[str] | None = None) -> None:
        """Store vectors (and attributes: dicts, or JSON strings as they are)."""
        if not keys:
            return
        raw = ([a if isinstance(a, str) else json.dumps(a, ensure_ascii=False) for a in attrs]
               if attrs is not None else None)
        self._write(keys, vectors, raw)
        for n, (key, vec) in enumerate(zip(keys, vectors, strict=True)):
            self._vectors[key] = np.asarray(vec, dtype=np.float32)
            if raw is not None:
                self._attrs[key] = raw[n]

    def _compact(self, old: list[Path]) -> None:
        keys = list(self._vectors)
        if not keys:
            return
        attrs = [self._attrs.get(k, "") for k in keys]
        self._write(keys, np.stack([self._vectors[k] for k in keys]), attrs)
        for shard in old:
            shard.unlink(missing_ok=True)
