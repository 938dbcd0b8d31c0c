"""Helpers shared by the command modules: error reporting and JSON output.

A user's mistake (a missing or wrong file, a bad option value, an unusable dataset or database
URL) ends the command with one line ``error: ...`` on stderr and exit status 2; the global
``--debug`` option shows the traceback instead."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer

#: set by the global ``--debug`` option: errors propagate with their traceback
DEBUG = False

#: the ``--database-url`` option every command that reads or writes the database takes
DbUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="AVREC_DATABASE_URL",
        help="SQLAlchemy URL (default: SQLite in $AVREC_HOME)",
    ),
]

#: ``--cluster`` / ``--workers``: where batch work runs as Dask tasks (avrec.cluster)
Cluster = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        envvar="AVREC_DASK_SCHEDULER",
        help="run as Dask tasks: 'local' (a LocalCluster on this machine) or a scheduler "
        "address tcp://HOST:PORT (default: in this process)",
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="LocalCluster worker processes (default: one per core); above 1 alone means "
        "--cluster local",
    ),
]


class UserError(Exception):
    """An error caused by the user's input; printed without a traceback, exit code 2."""


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def require_file(path: Path, what: str) -> Path:
    """``path`` as an existing regular file, or a UserError saying what it should be."""
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file")
    if not path.is_file():
        raise UserError(f"{what} {path}: no such file")
    return path


def require_model(path: Path) -> Path:
    if not (path / "manifest.json").is_file():
        raise UserError(
            f"{path}: not a saved avrec model (no manifest.json; train one with avrec train)"
        )
    return path


def user_message(exc: BaseException) -> str | None:
    """The one-line message for an error caused by the user's input (None: not one)."""
    from avrec.errors import AvrecError

    if isinstance(exc, KeyError) and not isinstance(exc, AvrecError):
        return str(exc.args[0]) if exc.args else "unknown key"
    if isinstance(exc, AvrecError | UserError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    module = type(exc).__module__
    if module.startswith("sqlalchemy"):
        from sqlalchemy import exc as sa

        if isinstance(exc, sa.ArgumentError | sa.NoSuchModuleError):
            return (
                f"database URL: {exc} (expected e.g. sqlite:///path.db or postgresql+psycopg://...)"
            )
        if isinstance(exc, sa.OperationalError):
            reason = str(getattr(exc, "orig", exc)).splitlines()[0]
            return f"database: {reason} (check --database-url / AVREC_DATABASE_URL)"
    if module.startswith("alembic") and type(exc).__name__ == "CommandError":
        return f"database schema: {exc}"
    return None


def handles_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn errors caused by the user's input into a one-line message and exit status 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from avrec.errors import AvrecError

        try:
            return func(*args, **kwargs)
        except Exception as exc:
            msg = None if DEBUG else user_message(exc)
            if msg is None:
                raise
            typer.echo(f"error: {msg}", err=True)
            sys.exit(exc.exit_code if isinstance(exc, AvrecError) else 2)

    return wrapper


@contextmanager
def cluster_client(cluster: str | None, workers: int | None) -> Iterator[Any]:
    """:func:`avrec.cluster.dask_client` for the ``--cluster``/``--workers`` options (None:
    in-process); a bad address or an unreachable scheduler is a UserError."""
    from avrec.cluster import ClusterError, cluster_address, dask_client

    try:
        with dask_client(cluster_address(cluster, workers), workers) as client:
            yield client
    except ClusterError as exc:
        raise UserError(str(exc)) from None
