"""Embedding cache keyed by (encoder name, version, content hash): a second run over an
unchanged catalog does no model work. Stored as append-only ``.npz`` shards per encoder under
``$AVREC_HOME/cache/embeddings`` (each finished batch is a shard, so an interrupted run resumes).

Besides the vector, an entry may hold readable attributes (labels, OCR text, transcript) as a
JSON string, so that a cache hit gives back everything the model produced. No pickle."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import uuid
import zipfile
from pathlib import Path
from typing import Self

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


class FileKeys:
    """:func:`file_key` remembered per file: a file whose path, size, modification and change
    times and inode are those seen when it was hashed is not read again (as git's index does),
    so a later run over a large media catalog costs a ``stat`` per file. Kept in SQLite at
    ``$AVREC_HOME/cache/file_keys.sqlite``; a memo that cannot be read or written is skipped
    (every file is hashed), and none is opened before the first file is asked for. Use as a
    context manager: new entries are written at exit and every :attr:`FLUSH` files."""

    FLUSH = 500

    def __init__(self, root: Path | None = None):
        self.path = (root or avrec_home() / "cache") / "file_keys.sqlite"
        self._db: sqlite3.Connection | None = None
        self._opened = False
        self._pending: list[tuple] = []
        self._known: dict[str, tuple[str, str]] = {}  # path -> (stat, key) seen in this run
        self.hashed = 0  # files read in this run (the others came from the memo)

    def __enter__(self) -> Self:
        return self

    def _open(self) -> None:
        self._opened = True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS file_keys (path TEXT PRIMARY KEY, "
                "stat TEXT NOT NULL, key TEXT NOT NULL)"
            )
        except (OSError, sqlite3.Error):
            self._db = None

    def __exit__(self, *exc) -> None:
        self._flush()
        if self._db is not None:
            self._db.close()
            self._db = None

    def __call__(self, path: str | Path) -> str:
        resolved = str(Path(path).resolve())
        st = os.stat(resolved)
        stamp = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"
        seen = self._known.get(resolved)
        if seen is not None and seen[0] == stamp:
            return seen[1]
        if not self._opened:
            self._open()
        if self._db is not None:
            try:
                row = self._db.execute(
                    "SELECT stat, key FROM file_keys WHERE path = ?", (resolved,)
                ).fetchone()
            except sqlite3.Error:
                row = None
            if row is not None and row[0] == stamp:
                self._known[resolved] = (stamp, row[1])
                return row[1]
        key = file_key(resolved)
        self.hashed += 1
        self._known[resolved] = (stamp, key)
        self._pending.append((resolved, stamp, key))
        if len(self._pending) >= self.FLUSH:
            self._flush()
        return key

    def _flush(self) -> None:
        if self._db is not None and self._pending:
            try:
                with self._db:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO file_keys VALUES (?, ?, ?)", self._pending
                    )
            except sqlite3.Error:
                self._db = None
        self._pending = []


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
        np.savez(tmp, allow_pickle=True, **arrays)
        os.replace(tmp, self.dir / f"{uuid.uuid4().hex}.npz")

    def put_many(
        self, keys: list[str], vectors: np.ndarray, attrs: list[dict] | list[str] | None = None
    ) -> None:
        """Store vectors (and attributes: dicts, or JSON strings as they are)."""
        if not keys:
            return
        raw = (
            [a if isinstance(a, str) else json.dumps(a, ensure_ascii=False) for a in attrs]
            if attrs is not None
            else None
        )
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
