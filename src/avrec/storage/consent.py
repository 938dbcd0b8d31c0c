"""A person's consent to their data training models, and the filter that keeps the data of
those who said no out of every training set read from the database.

No row in ``user_consent`` means consent given (the default); ``training=False`` is an
opt-out. The opt-out covers training only: the service's online state, which adapts a person's
own recommendations to their events, keeps working for them."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import ColumnElement, Engine, Select, func, select
from sqlalchemy.dialects import postgresql, sqlite

from avrec.storage import tables as t


def set_training_consent(engine: Engine, user_id: str, training: bool) -> None:
    """Store the person's choice (an upsert: the latest choice wins)."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(t.user_consent).values(user_id=user_id, training=training)
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.user_consent.c.user_id],
        set_={"training": training, "updated_at": func.now()},
    )
    with engine.begin() as conn:
        conn.execute(stmt)


def consent_state(engine: Engine, user_id: str) -> dict:
    """``{"training": bool, "updated_at": datetime | None}``; no stored choice: consent given,
    ``updated_at`` None."""
    c = t.user_consent.c
    with engine.connect() as conn:
        row = conn.execute(
            select(c.training, c.updated_at).where(c.user_id == user_id)
        ).one_or_none()
    if row is None:
        return {"training": True, "updated_at": None}
    when = row.updated_at  # SQLite hands it back without a zone: it is stored in UTC
    return {
        "training": bool(row.training),
        "updated_at": when if when.tzinfo else when.replace(tzinfo=UTC),
    }


def opted_out() -> Select:
    """The user IDs that opted out of training, as a subquery for ``column.in_(...)``."""
    c = t.user_consent.c
    return select(c.user_id).where(c.training.is_(False))


def may_train(user_id_column) -> ColumnElement[bool]:
    """A WHERE clause keeping the rows of ``user_id_column`` whose user did not opt out. Every
    read of training data from the database applies it (``load_from_db`` does)."""
    return user_id_column.not_in(opted_out())
