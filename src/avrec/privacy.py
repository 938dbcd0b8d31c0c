"""A person's control over their data: deleting a user everywhere avrec keeps them (the
database, saved model folders and evaluation reports) and exporting everything stored about
them (:func:`export_user`). The service (``DELETE /api/users/{id}``) and the CLI (``avrec users
delete``) both call :func:`delete_everywhere`; the service also drops its in-memory state.

Which folders: those given by the caller (the service's own model folder; ``--model-dir`` and
``--reports`` on the CLI) plus every folder recorded in the database's ``artifacts`` table
with kind ``model`` or ``report``. A registered folder that no longer exists is skipped and
listed under ``missing``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from avrec.data.dataset import split_multi
from avrec.evaluation.forget import forget_users_in_reports
from avrec.feedback.online import OnlineStates, UserState
from avrec.feedback.profile import user_profile
from avrec.models.forget import UnknownUserArray, forget_users, unlearn_users
from avrec.storage import registry
from avrec.storage import tables as t
from avrec.storage.consent import consent_state
from avrec.storage.users import USER_TABLES, delete_user, registered_folders


def delete_everywhere(
    user_id: str,
    engine: Engine,
    model_dirs: Iterable[Path] = (),
    report_dirs: Iterable[Path] = (),
    after_rows: Callable[[], None] | None = None,
    unlearn: bool = False,
) -> dict:
    """Remove ``user_id`` from the database (rows of every table with a user_id; on SQLite the
    WAL is truncated too), from the per-user arrays of every model folder and from the
    per-user lines of every report folder. ``after_rows`` runs once the rows are deleted,
    before the folders (the service drops its memory there, so a folder that cannot be
    rewritten leaves no state behind). Returns what was removed where; a folder that could
    not be rewritten (a read-only disk, an array avrec does not know) is left as it was and
    listed under ``failed`` with the reason, the others are done: deleting again retries it.

    ``unlearn`` (``avrec users forget``): the promoted version's folder and ``model_dirs`` also
    lose the user's influence on what they learned (``models.forget.unlearn_users``: exact for
    EASE and the hybrid's EASE backbone); whatever still holds it (other models, the hybrid's
    VAE, ...) is listed under ``pending`` and a retrain is requested in the registry, which the
    next ``avrec retrain`` round honours (trains without the user and promotes)."""
    rows = delete_user(user_id, engine)
    if after_rows is not None:
        after_rows()
    models = list(dict.fromkeys([*map(Path, model_dirs), *registered_folders(engine, "model")]))
    served = registry.promoted(engine) if unlearn else None
    learned = {*map(Path, model_dirs), *([served.path] if served is not None else [])}
    reports = list(dict.fromkeys([*map(Path, report_dirs), *registered_folders(engine, "report")]))
    done: dict = {
        "database": rows,
        "models": {},
        "reports": {},
        "failed": {},
        "missing": [str(p) for p in models + reports if not p.is_dir()],
        "pending": {},
    }
    for kind, folders, forget in (
        ("models", models, forget_users),
        ("reports", reports, forget_users_in_reports),
    ):
        for path in folders:
            if not path.is_dir():
                continue
            try:
                if unlearn and kind == "models" and path in learned:
                    done[kind][str(path)], change = unlearn_users(path, [user_id])
                    if change.pending:
                        done["pending"][str(path)] = change.pending
                else:
                    done[kind][str(path)] = forget(path, [user_id])
            except (OSError, UnknownUserArray) as exc:
                done["failed"][str(path)] = str(exc) or type(exc).__name__
    if done["pending"]:
        parts = sorted({p for held in done["pending"].values() for p in held})
        registry.request_retrain(
            engine, "a deleted user is still held by " + ", ".join(parts),
            {"models": list(done["pending"])},
        )  # fmt: skip
    return done


# ---- a person's control: export ------------------------------------------------------------
#: the format of an export (bumped when its keys change)
EXPORT_VERSION = 1


def _plain(value: Any) -> Any:
    """A stored value as JSON: datetimes as ISO 8601 text in UTC (SQLite hands them back
    without a zone; avrec stores them in UTC), the rest as is."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def stored_rows(user_id: str, engine: Engine) -> dict[str, list[dict]]:
    """Every row, with every column, of every table that holds a ``user_id`` (the tables a
    deletion empties), for this user only, in insertion order where the table has one."""
    out = {}
    with engine.connect() as conn:
        for table in USER_TABLES:
            q = select(table).where(table.c.user_id == user_id)
            if "id" in table.c:
                q = q.order_by(table.c.id)
            rows = [
                {k: _plain(v) for k, v in row._mapping.items()} for row in conn.execute(q).all()
            ]
            out[table.name] = rows
    for row in out.get(t.interactions.name, []):  # an unknown time is stored as -1
        if row.get("timestamp") == t.NO_TIMESTAMP:
            row["timestamp"] = None
    return out


@dataclass(frozen=True)
class _Facets:
    genres: list[str]
    kind: str | None
    language: str | None


def online_view(state: UserState, item_facets, engine: Engine | None) -> dict:
    """What the service derives about a person: the profile it shows (``GET
    /api/users/{id}/profile``) and the online state its recommendations start from."""
    return {
        "profile": user_profile(state, item_facets, engine),
        "online_state": {
            "history": list(state.history),
            "negatives": list(state.negatives),
            "events": state.events,
        },
    }


def online_view_from_db(user_id: str, engine: Engine) -> dict:
    """:func:`online_view` rebuilt from the database alone (the CLI has no running service):
    the person's interactions, oldest first, seed the history, then their events are replayed
    as the service does at start. The service's own view can differ where the served model
    was trained on other rows than the ``interactions`` table holds."""
    i, e = t.interactions.c, t.feedback_events.c
    with engine.connect() as conn:
        seen = conn.execute(
            select(i.item_id).where(i.user_id == user_id).order_by(i.timestamp, i.id)
        ).scalars()
        history = list(dict.fromkeys(reversed(list(seen))))[::-1]  # last time each item
        events = conn.execute(
            select(e.item_id, e.event, e.value, e.watch_fraction)
            .where(e.user_id == user_id)
            .order_by(e.id)
        ).all()
        items = set(history) | {row.item_id for row in events}
        facets = {}
        for chunk in _chunks(sorted(items), 500):
            for row in conn.execute(
                select(
                    t.items.c.item_id, t.items.c.genres, t.items.c.kind, t.items.c.language
                ).where(t.items.c.item_id.in_(chunk))
            ):
                facets[row.item_id] = _Facets(split_multi(row.genres), row.kind, row.language)
    states = OnlineStates()
    state = states.get(user_id, history)
    for row in events:
        states.apply(user_id, row.item_id, row.event, row.value, row.watch_fraction)
    return online_view(state, facets.get, engine)


def _chunks(values: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def export_user(user_id: str, engine: Engine, online: dict | None = None) -> dict | None:
    """Everything avrec stores about ``user_id``, and nothing about anyone else, as JSON-ready
    data: their rows of every table with a user_id (user row, interactions, feedback events,
    the lists shown to them, consent; every column), their consent state, the ids the API
    shows them (event ids, request ids), and what is derived from them (``online``: the
    service passes its live :func:`online_view`; default: :func:`online_view_from_db`). None
    when nothing is stored about them and no ``online`` view is given (an unknown user).
    ``GET /api/users/{id}/export`` and ``avrec users export`` both call this.

    Not included: the per-user rows of saved model folders (factors and biases learned from
    the same interactions, not readable as data about the person) and evaluation reports."""
    rows = stored_rows(user_id, engine)
    if not any(rows.values()) and online is None:
        return None
    events = rows[t.feedback_events.name]
    users = rows[t.users.name]
    return {
        "format": EXPORT_VERSION,
        "user_id": user_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "user": users[0] if users else None,
        "consent": {k: _plain(v) for k, v in consent_state(engine, user_id).items()},
        "interactions": rows[t.interactions.name],
        "feedback_events": events,
        "impressions": rows[t.impressions.name],
        "ad_events": rows[t.ad_events.name],
        "ids": {
            "user_id": user_id,
            "event_ids": [row["id"] for row in events],
            "request_ids": [row["request_id"] for row in events if row["request_id"]],
        },
        "derived": online if online is not None else online_view_from_db(user_id, engine),
    }
