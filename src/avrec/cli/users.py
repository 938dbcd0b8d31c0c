"""``avrec users delete ID``: remove a user from the database, model folders and reports;
``avrec users forget ID``: that, and their influence on what the served model learned;
``avrec users export ID``: everything stored about them as JSON; ``avrec users consent ID``:
their consent to their data training models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avrec.cli.common import DbUrl, UserError, handles_errors, require_model

#: ``--reports``: evaluation report folders whose per_user.csv lines of the user go
Reports = Annotated[
    list[Path],
    typer.Option(
        "--reports", help="an evaluation report folder (repeatable; per_user.csv lines go)"
    ),
]

users_app = typer.Typer(
    help="Users: export, consent, or delete everything avrec keeps of one.", no_args_is_help=True
)


def delete(
    user_id: Annotated[str, typer.Argument(help="the user's ID")],
    database_url: DbUrl = None,
    model_dir: Annotated[
        list[Path],
        typer.Option(
            "--model-dir",
            help="a model folder to remove the user from (repeatable); folders "
            "registered in the database's artifacts table are always included",
        ),
    ] = [],  # noqa: B006
    reports: Reports = [],  # noqa: B006
) -> None:
    """Delete a user's rows (interactions, events, user row), their rows in model folders and
    their lines in evaluation reports. A running service keeps its memory: while one runs,
    delete through its API (DELETE /api/users/ID) instead."""
    _delete(user_id, database_url, model_dir, reports, unlearn=False)


def forget(
    user_id: Annotated[str, typer.Argument(help="the user's ID")],
    database_url: DbUrl = None,
    model_dir: Annotated[
        list[Path],
        typer.Option(
            "--model-dir",
            help="a model folder to remove the user and their influence from (repeatable); "
            "the promoted version is always included, other registered folders lose the "
            "user's rows",
        ),
    ] = [],  # noqa: B006
    reports: Reports = [],  # noqa: B006
) -> None:
    """`users delete`, and the user's influence removed from what the promoted model (and
    each --model-dir) learned: exactly for EASE and the hybrid's EASE backbone (weights as if
    trained without them); parts that cannot be updated (the hybrid's VAE, first-items map,
    cold ranker, its ratings' mean; other models) are listed, and a retrain is requested that
    the next `avrec retrain` round honours: from then on no model served holds the user."""
    _delete(user_id, database_url, model_dir, reports, unlearn=True)


def _delete(
    user_id: str,
    database_url: str | None,
    model_dir: list[Path],
    reports: list[Path],
    unlearn: bool,
) -> None:
    from avrec.privacy import delete_everywhere
    from avrec.storage.db import get_engine

    if not user_id.strip():
        raise UserError("give the ID of the user to delete")
    for folder in model_dir:
        require_model(folder)
    for folder in reports:
        if not folder.is_dir():
            raise UserError(f"--reports {folder}: not a folder")
    done = delete_everywhere(user_id, get_engine(database_url), model_dir, reports, unlearn=unlearn)
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
    if not unlearn:
        return
    for path, held in done["pending"].items():
        typer.echo(f"  {path}: still learned from them until the next retrain: {', '.join(held)}")
    if done["pending"]:
        typer.echo("retrain requested: the next `avrec retrain` round trains without them")
    else:
        typer.echo("no model served holds them any more")


def export(
    user_id: Annotated[str, typer.Argument(help="the user's ID")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="write the JSON to this file (default: stdout)"),
    ] = None,
    database_url: DbUrl = None,
) -> None:
    """Everything the database holds about one person, as JSON: their user row, interactions,
    feedback events (every column), consent, the ids the API showed them and the profile
    derived from them (rebuilt from the database; the running service's export, GET
    /api/users/ID/export, shows its live one). A file is written readable by its owner only."""
    import json
    import os

    from avrec.privacy import export_user
    from avrec.storage.db import get_engine

    if not user_id.strip():
        raise UserError("give the ID of the user to export")
    if output is not None and output.is_dir():
        raise UserError(f"--output {output} is a folder; give a file")
    data = export_user(user_id, get_engine(database_url))
    if data is None:
        raise UserError(f"no trace of user {user_id!r} in the database; check the ID")
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # personal data
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    typer.echo(f"exported user {user_id!r} to {output}", err=True)


def consent(
    user_id: Annotated[str, typer.Argument(help="the user's ID")],
    training: Annotated[
        bool | None,
        typer.Option(
            "--training/--no-training",
            help="give (--training) or withdraw (--no-training) consent to the user's data "
            "training models; neither: show the stored choice",
            show_default=False,
        ),
    ] = None,
    database_url: DbUrl = None,
) -> None:
    """A person's consent to their events and interactions training models (given unless they
    opt out). Opted out, their rows are left out of every training set read from the
    database; the service's online state keeps adapting their own recommendations."""
    from avrec.storage.consent import consent_state, set_training_consent
    from avrec.storage.db import get_engine
    from avrec.storage.users import stored_anywhere

    if not user_id.strip():
        raise UserError("give the ID of the user")
    engine = get_engine(database_url)
    if not stored_anywhere(user_id, engine):
        raise UserError(f"no trace of user {user_id!r} in the database; check the ID")
    if training is not None:
        set_training_consent(engine, user_id, training)
    state = consent_state(engine, user_id)
    when = state["updated_at"]
    typer.echo(
        f"user {user_id!r}: training consent "
        + ("given" if state["training"] else "withdrawn")
        + (f" (since {when.isoformat()})" if when is not None else " (the default)")
    )


def register(app: typer.Typer) -> None:
    users_app.command("export")(handles_errors(export))
    users_app.command("consent")(handles_errors(consent))
    users_app.command("delete")(handles_errors(delete))
    users_app.command("forget")(handles_errors(forget))
    app.add_typer(users_app, name="users")
