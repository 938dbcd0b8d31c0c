"""User-level storage operations (privacy: deleting everything a user left behind)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, delete, select

from avrec.storage import tables as t
from avrec.storage.db import get_engine

#: every table with a ``user_id`` column (a test checks this list against the schema)
USER_TABLES = (
    t.interactions,
    t.feedback_events,
    t.impressions,
    t.ad_events,
    t.user_consent,
    t.users,
)


def delete_user(user_id: str, engine: Engine | None = None) -> dict[str, int]:
    """Remove a user's interactions, feedback events and user row in one transaction.
    Returns the number of rows removed per table (all zero for an unknown user).

    On SQLite the deleted rows are overwritten in the database pages (``secure_delete``) and the
    write-ahead log is then checkpointed and truncated, so the user's bytes leave the ``-wal``
    file too (see :func:`checkpoint`)."""
    engine = engine or get_engine()
    sqlite = engine.dialect.name == "sqlite"
    removed = {}
    with engine.connect() as conn:
        if sqlite:  # per connection; set outside a transaction
            conn.exec_driver_sql("PRAGMA secure_delete=ON")
            conn.commit()
        with conn.begin():
            for table in USER_TABLES:
                removed[table.name] = conn.execute(
                    delete(table).where(table.c.user_id == user_id)
                ).rowcount
        if sqlite:
            conn.exec_driver_sql("PRAGMA secure_delete=OFF")
            conn.commit()
    if sqlite and any(removed.values()):
        checkpoint(engine)
    return removed


def stored_anywhere(user_id: str, engine: Engine) -> bool:
    """Whether any table with a ``user_id`` holds a row of this user."""
    with engine.connect() as conn:
        return any(
            conn.execute(select(table.c.user_id).where(table.c.user_id == user_id).limit(1)).first()
            is not None
            for table in USER_TABLES
        )


def checkpoint(engine: Engine, tries: int = 20) -> bool:
    """SQLite: copy the write-ahead log into the database file and truncate the log to zero
    bytes. A reader still holding an older snapshot blocks the truncation; it is retried
    (``busy_timeout`` waits each time). Returns whether the log was truncated."""
    if engine.dialect.name != "sqlite":
        return True
    for _ in range(tries):
        with engine.connect() as conn:
            busy, _log, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            conn.commit()
        if not busy:
            return True
    return False


def registered_folders(engine: Engine, kind: str) -> list[Path]:
    """Folders recorded in the ``artifacts`` table under ``kind`` (``model`` or ``report``)."""
    with engine.connect() as conn:
        paths = conn.execute(select(t.artifacts.c.path).where(t.artifacts.c.kind == kind)).scalars()
        return [Path(p) for p in dict.fromkeys(paths)]
