"""API keys: stored as SHA-256 hashes only; the key itself is shown once, at creation."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

from sqlalchemy import Engine, delete, func, insert, select, update

from avrec.storage import tables as t

#: read: users' recommendations and profiles; write: events and items; admin: deletion, latency
SCOPES = ("read", "write", "admin")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(engine: Engine, name: str, scopes: list[str]) -> str:
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ValueError(
            f"scopes must be among {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}"
        )
    key = "avk_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            insert(t.api_keys).values(name=name, key_hash=hash_key(key), scopes=",".join(scopes))
        )
    return key


def key_scopes(engine: Engine, key: str | None) -> set[str]:
    """The scopes of a presented key (empty for a missing or unknown key)."""
    if not key:
        return set()
    with engine.connect() as conn:
        row = conn.execute(
            select(t.api_keys.c.scopes).where(t.api_keys.c.key_hash == hash_key(key))
        ).first()
    if row:
        record_use(engine, hash_key(key))
    return set(row[0].split(",")) if row else set()


#: how often a key's ``last_used_at`` is written at most (seconds): a key used on every request
#: costs one small write a minute, not one per request
LAST_USED_EVERY = 60.0
_last_written: dict[tuple[int, str], float] = {}
_last_lock = threading.Lock()


def record_use(engine: Engine, key_hash: str, now: float | None = None) -> bool:
    """Note that a key was used: sets ``api_keys.last_used_at`` unless this process wrote it
    less than :data:`LAST_USED_EVERY` seconds ago. Returns whether it wrote."""
    now = time.monotonic() if now is None else now
    slot = (id(engine), key_hash)
    with _last_lock:
        if now - _last_written.get(slot, float("-inf")) < LAST_USED_EVERY:
            return False
        _last_written[slot] = now
    with engine.begin() as conn:
        conn.execute(
            update(t.api_keys)
            .where(t.api_keys.c.key_hash == key_hash)
            .values(last_used_at=func.now())
        )
    return True


def list_keys(engine: Engine) -> list[dict]:
    """Every key's name, scopes, creation and last use (never the key or its hash)."""
    c = t.api_keys.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(c.name, c.scopes, c.created_at, c.last_used_at).order_by(c.created_at, c.id)
        ).all()
    return [
        {
            "name": r.name,
            "scopes": r.scopes.split(","),
            "created": r.created_at,
            "last_used": r.last_used_at,
        }
        for r in rows
    ]


def revoke_key(engine: Engine, name: str) -> int:
    """Delete every key called ``name``; returns how many there were (0: none by that name)."""
    with engine.begin() as conn:
        return conn.execute(delete(t.api_keys).where(t.api_keys.c.name == name)).rowcount
