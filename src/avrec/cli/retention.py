"""``avrec retention apply``: delete feedback events older than the retention age."""

from __future__ import annotations

from typing import Annotated

import typer

from avrec.cli.common import DbUrl, UserError, handles_errors

retention_app = typer.Typer(
    help="Retention: delete stored feedback events past an age.", no_args_is_help=True
)


def apply(
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            help="age in days (default: $AVREC_RETENTION_DAYS; unset: nothing is deleted)",
            show_default=False,
        ),
    ] = None,
    database_url: DbUrl = None,
) -> None:
    """Delete the feedback events created more than DAYS days ago and print the rows deleted
    per table. Ingested interactions (the datasets training reads) are not events and are
    kept. A running service keeps the deleted events in its online state until its own
    retention run (AVREC_RETENTION_DAYS set for it) or a restart."""
    from datetime import UTC, datetime

    from avrec.settings import retention_days
    from avrec.storage.db import get_engine
    from avrec.storage.retention import cutoff, expire_events

    if older_than is None:
        try:
            older_than = retention_days()
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if older_than is None:
        typer.echo("no retention age (--older-than or AVREC_RETENTION_DAYS): nothing deleted")
        return
    now = datetime.now(UTC)
    before = cutoff(older_than, now)  # a bad age fails here, before the database is opened
    removed, _users = expire_events(get_engine(database_url), older_than, now)
    typer.echo(f"deleted what was stored before {before.isoformat()} ({older_than:g} days):")
    for table, n in removed.items():
        typer.echo(f"  {table}: {n}")


def register(app: typer.Typer) -> None:
    retention_app.command("apply")(handles_errors(apply))
    app.add_typer(retention_app, name="retention")
