"""``avrec users delete ID``: remove a user from the database, model folders and reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avrec.cli.common import UserError, handles_errors, require_model

users_app = typer.Typer(help="Users: delete everything avrec keeps of one.", no_args_is_help=True)


def delete(
    user_id: Annotated[str, typer.Argument(help="the user's ID")],
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="AVREC_DATABASE_URL",
            help="SQLAlchemy URL (default: SQLite in $AVREC_HOME)",
        ),
    ] = None,
    model_dir: Annotated[
        list[Path],
        typer.Option(
            "--model-dir",
            help="a model folder to remove the user from (repeatable); folders "
            "registered in the database's artifacts table are always included",
        ),
    ] = [],  # noqa: B006
    reports: Annotated[
        list[Path],
        typer.Option(
            "--reports", help="an evaluation report folder (repeatable; per_user.csv lines go)"
        ),
    ] = [],  # noqa: B006
) -> None:
    """Delete a user's rows (interactions, events, user row), their rows in model folders and
    their lines in evaluation reports. A running service keeps its memory: while one runs,
    delete through its API (DELETE /api/users/ID) instead."""
    from avrec.privacy import delete_everywhere
    from avrec.storage.db import get_engine

    if not user_id.strip():
        raise UserError("give the ID of the user to delete")
    for folder in model_dir:
        require_model(folder)
    for folder in reports:
        if not folder.is_dir():
            raise UserError(f"--reports {folder}: not a folder")
    done = delete_everywhere(user_id, get_engine(database_url), model_dir, reports)
    for path in done["missing"]:
        typer.echo(f"note: registered folder {path} does not exist; skipped", err=True)
    if done["failed"]:
        where = "; ".join(f"{path}: {why}" for path, why in done["failed"].items())
        raise UserError(
            f"the user's rows are deleted, but these folders could not be rewritten and still "
            f"hold them: {where}; fix the cause and run the command again"
        )
    rows = sum(done["database"].values())
    found = rows + sum(done["models"].values()) + sum(done["reports"].values())
    if not found:
        raise UserError(
            f"no trace of user {user_id!r} in the database, "
            f"{len(done['models'])} model folder(s) or {len(done['reports'])} report "
            "folder(s); check the ID (and --model-dir / --reports)"
        )
    typer.echo(
        f"deleted user {user_id!r}: "
        + ", ".join(f"{n} {table}" for table, n in done["database"].items())
    )
    for kind in ("models", "reports"):
        for path, n in done[kind].items():
            typer.echo(f"  {path}: {n} {'row(s)' if kind == 'models' else 'line(s)'} removed")


def register(app: typer.Typer) -> None:
    users_app.command("delete")(handles_errors(delete))
    app.add_typer(users_app, name="users")
