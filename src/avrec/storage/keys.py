"""API keys: stored as SHA-256 hashes only; the key itself is shown once, at creation."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Engine, insert, select

from avrec.storage import tables as t

#: read: users' recommendations and profiles; write: events and items; admin: deletion, latency
SCOPES = ("read", "write", "admin")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(engine: Engine, name: str, scopes: list[str]) -> str:
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ValueError(f"scopes must be among {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}")
    key = "avk_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(insert(t.api_keys).values(name=name, key_hash=hash_key(key), scopes=",".join(scopes)))
    return key


def key_scopes(engine: Engine, key: str | None) -> set[str]:
    """The scopes of a presented key (empty for a missing or unknown key)."""
    if not key:
        return set()
    with engine.connect() as conn:
        row = conn.execute(select(t.api_keys.c.scopes).where(t.api_keys.c.key_hash == hash_key(key))).first()
    return set(row[0].split(",")) if row else set()
