"""Data commands: ``avrec ingest``, ``avrec db``, ``avrec stats``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
) -> None:
    """Validate a dataset and load it into the database (one transaction, idempotent)."""
    from avrec.data.loaders import load_dataset
    from avrec.data.validation import Rules
    from avrec.storage.db import get_engine
    from avrec.storage.ingest import ingest as run_ingest

    options: dict[str, Any] = (
        {"rules": Rules(rating_max=rating_max)} if (format or "folder") == "folder" else {}
    )
    dataset = load_dataset(path, format, **options)
    report = run_ingest(dataset, get_engine(database_url), dry_run=dry_run)
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
