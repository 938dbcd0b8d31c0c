"""Deleting a user everywhere avrec keeps them: the database, saved model folders and
evaluation reports. The service (``DELETE /api/users/{id}``) and the CLI (``avrec users
delete``) both call :func:`delete_everywhere`; the service also drops its in-memory state.

Which folders: those given by the caller (the service's own model folder; ``--model-dir`` and
``--reports`` on the CLI) plus every folder recorded in the database's ``artifacts`` table
with kind ``model`` or ``report``. A registered folder that no longer exists is skipped and
listed under ``missing``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy import Engine

from avrec.evaluation.forget import forget_users_in_reports
from avrec.models.forget import UnknownUserArray, forget_users
from avrec.storage.users import delete_user, registered_folders


def delete_everywhere(
    user_id: str,
    engine: Engine,
    model_dirs: Iterable[Path] = (),
    report_dirs: Iterable[Path] = (),
    after_rows: Callable[[], None] | None = None,
) -> dict:
    """Remove ``user_id`` from the database (rows of every table with a user_id; on SQLite the
    WAL is truncated too), from the per-user arrays of every model folder and from the
    per-user lines of every report folder. ``after_rows`` runs once the rows are deleted,
    before the folders (the service drops its memory there, so a folder that cannot be
    rewritten leaves no state behind). Returns what was removed where; a folder that could
    not be rewritten (a read-only disk, an array avrec does not know) is left as it was and
    listed under ``failed`` with the reason, the others are done: deleting again retries it."""
    rows = delete_user(user_id, engine)
    if after_rows is not None:
        after_rows()
    models = list(dict.fromkeys([*map(Path, model_dirs), *registered_folders(engine, "model")]))
    reports = list(dict.fromkeys([*map(Path, report_dirs), *registered_folders(engine, "report")]))
    done: dict = {
        "database": rows,
        "models": {},
        "reports": {},
        "failed": {},
        "missing": [str(p) for p in models + reports if not p.is_dir()],
    }
    for kind, folders, forget in (
        ("models", models, forget_users),
        ("reports", reports, forget_users_in_reports),
    ):
        for path in folders:
            if not path.is_dir():
                continue
            try:
                done[kind][str(path)] = forget(path, [user_id])
            except (OSError, UnknownUserArray) as exc:
                done["failed"][str(path)] = str(exc) or type(exc).__name__
    return done
