"""Retention: feedback events older than an age are deleted.

Only ``feedback_events`` expire. The ``interactions`` table holds ingested datasets (the
training data, with the dataset's own timestamps), never rows made from events, so retention
leaves it alone; a person's interactions go with ``avrec users delete``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, String, bindparam, delete, select

from avrec.errors import AvrecError
from avrec.storage import tables as t
from avrec.storage.users import checkpoint


class BadRetention(AvrecError):
    """A retention age that is not a positive number of days."""


def cutoff(older_than_days: float, now: datetime | None = None) -> datetime:
    """The moment before which events expire, in UTC: an event exactly ``older_than_days``
    old is kept, one a microsecond older goes."""
    if not older_than_days > 0 or older_than_days == float("inf"):
        raise BadRetention(
            f"the retention age must be a positive number of days, not {older_than_days}"
        )
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now - timedelta(days=older_than_days)


def expire_events(
    engine: Engine, older_than_days: float, now: datetime | None = None
) -> tuple[dict[str, int], set[str]]:
    """Delete the feedback events created before ``cutoff(older_than_days, now)``, in one
    transaction. Returns the rows deleted per table and the users who lost events (the service
    rebuilds their online state). On SQLite the freed cells are zeroed and the log truncated,
    as for a deleted user."""
    moment = cutoff(older_than_days, now)
    c = t.feedback_events.c
    if engine.dialect.name == "sqlite":
        # SQLite keeps datetimes as text in UTC: "YYYY-MM-DD HH:MM:SS" from CURRENT_TIMESTAMP,
        # with ".ffffff" when SQLAlchemy wrote them. Compared as text, the cutoff carries its
        # fraction only when it has one: "12:00:00" < "12:00:00.000000" would expire an event
        # stored exactly at a whole-second cutoff
        text = moment.strftime("%Y-%m-%d %H:%M:%S")
        if moment.microsecond:
            text += f".{moment.microsecond:06d}"
        when = bindparam("cutoff", text, type_=String)
    else:
        when = bindparam("cutoff", moment, type_=c.created_at.type)
    old = c.created_at < when
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            conn.exec_driver_sql("PRAGMA secure_delete=ON")
            conn.commit()
        with conn.begin():
            users = set(conn.execute(select(c.user_id).where(old).distinct()).scalars())
            n = conn.execute(delete(t.feedback_events).where(old)).rowcount
        if sqlite:
            conn.exec_driver_sql("PRAGMA secure_delete=OFF")
            conn.commit()
    if sqlite and n:
        checkpoint(engine)
    return {t.feedback_events.name: n}, users
