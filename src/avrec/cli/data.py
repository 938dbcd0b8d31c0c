"""Data commands: ``avrec ingest``, ``avrec db``, ``avrec stats``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avrec.cli.common import DbUrl, handles_errors


def ingest(
    path: Annotated[Path, typer.Argument(help="dataset folder (or MovieLens distribution folder)")],
    format: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", help="folder | ml-100k | ml-1m | ml-latest (default: detect)"
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="validate only, write nothing")
    ] = False,
    rating_max: Annotated[float, typer.Option(help="highest allowed rating")] = 10.0,
    database_url: DbUrl = None,
    chunk_rows: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="interaction rows read, checked and written at a time, for a dataset folder "
            "(default $AVREC_CHUNK_ROWS or 500,000)",
        ),
    ] = None,
) -> None:
    """Validate a dataset and load it into the database (one transaction, idempotent). A
    dataset folder's interactions are streamed in chunks, so memory stays bounded."""
    from avrec.data.loaders import detect_format, load_dataset
    from avrec.data.validation import Rules
    from avrec.storage.db import get_engine
    from avrec.storage.ingest import ingest as run_ingest
    from avrec.storage.ingest import ingest_folder

    if (format or detect_format(path)) == "folder":
        report = ingest_folder(
            path,
            get_engine(database_url),
            rules=Rules(rating_max=rating_max),
            chunk_rows=chunk_rows,
            dry_run=dry_run,
        )
    else:
        report = run_ingest(load_dataset(path, format), get_engine(database_url), dry_run=dry_run)
    typer.echo(str(report))


def stats(database_url: DbUrl = None) -> None:
    """Row counts of the database's tables."""
    from avrec.storage.db import get_engine
    from avrec.storage.ingest import table_counts

    for name, count in table_counts(get_engine(database_url)).items():
        typer.echo(f"{name:20s} {count:>12,d}")


db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)


def db_upgrade(database_url: DbUrl = None, revision: str = "head") -> None:
    """Apply migrations (done automatically on first use too)."""
    from avrec.storage.db import make_engine, upgrade

    upgrade(make_engine(database_url), revision)
    typer.echo(f"database at revision {revision}")


def db_downgrade(revision: str, database_url: DbUrl = None) -> None:
    """Revert migrations down to REVISION (``base`` drops everything)."""
    from avrec.storage.db import downgrade, make_engine

    downgrade(make_engine(database_url), revision)
    typer.echo(f"database at revision {revision}")


def register(app: typer.Typer) -> None:
    app.command("ingest")(handles_errors(ingest))
    app.command("stats")(handles_errors(stats))
    db_app.command("upgrade")(handles_errors(db_upgrade))
    db_app.command("downgrade")(handles_errors(db_downgrade))
    app.add_typer(db_app, name="db")
