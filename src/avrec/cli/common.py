"""Helpers shared by the command modules: error reporting and JSON output."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import typer


class UserError(Exception):
    """An error caused by the user's input; printed without a traceback, exit code 2."""


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def handles_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected input errors into a one-line message and a non-zero exit."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from avrec.errors import AvrecError

        try:
            return func(*args, **kwargs)
        except (AvrecError, UserError, FileNotFoundError, KeyError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            typer.echo(f"error: {msg}", err=True)
            sys.exit(exc.exit_code if isinstance(exc, AvrecError) else 2)

    return wrapper
