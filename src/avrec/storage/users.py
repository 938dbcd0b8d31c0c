"""User-level storage operations (privacy: deleting everything a user left behind)."""

from __future__ import annotations

from sqlalchemy import Engine, delete

from avrec.storage import tables as t
from avrec.storage.db import get_engine


def delete_user(user_id: str, engine: Engine | None = None) -> dict[str, int]:
    """Remove a user's interactions, feedback events and user row in one transaction.
    Returns the number of rows removed per table (all zero for an unknown user)."""
    engine = engine or get_engine()
    removed = {}
    with engine.begin() as conn:
        for table in (t.interactions, t.feedback_events, t.users):
            removed[table.name] = conn.execute(delete(table).where(table.c.user_id == user_id)).rowcount
    return removed
