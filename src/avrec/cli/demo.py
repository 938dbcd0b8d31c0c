"""``avrec demo``: the whole pipeline on the bundled demo data."""

from __future__ import annotations

from typing import Annotated

import typer

from avrec.cli.common import DbUrl, handles_errors


def demo(
    database_url: DbUrl = None,
    model: Annotated[
        str | None, typer.Option(help="model to train (default: the recommended one)")
    ] = None,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="end by serving the web page")
    ] = True,
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
) -> None:
    """Ingest -> encode -> train -> evaluate -> serve, on the bundled MovieLens latest-small
    data (SQLite in $AVREC_HOME by default)."""
    from avrec.demo import run_demo

    run_demo(typer.echo, database_url, model, serve, host, port)


def register(app: typer.Typer) -> None:
    app.command("demo")(handles_errors(demo))
