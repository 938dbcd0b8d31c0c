"""The ``avrec`` command line: thin commands over the library.

Each command group lives in its own module under ``avrec.cli`` and exposes
``register(app)``; heavy imports happen inside the command functions, so
``avrec --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from avrec.cli import common

app = typer.Typer(
    name="avrec",
    help="avrec: recommend audio and video content by understanding it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", help="show the traceback of an error"),
) -> None:
    common.DEBUG = debug


#: command modules, in the order their commands appear in --help
COMMAND_MODULES = [
    "data",
    "encode",
    "models",
    "registry",
    "evaluate",
    "rules",
    "ads",
    "audit",
    "serve",
    "users",
    "retention",
    "demo",
]


def _register_all() -> None:
    for name in COMMAND_MODULES:
        module_name = f"avrec.cli.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # that command group is not part of this build
                continue
            raise
        module.register(app)


_register_all()


def _click_errors(name: str) -> tuple[type[Any], ...]:
    """Click's exception class ``name``, from typer's vendored click and from click itself
    (typer releases differ in which one they raise)."""
    found = []
    for module in ("typer._click.exceptions", "click.exceptions", "typer.exceptions"):
        try:
            klass = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if klass is not None:
            found.append(klass)
    return tuple(found)


def main() -> None:
    """Run the CLI. A usage mistake (a bad option value, a missing argument, an unknown
    command) is one line ``error: ...`` and exit status 2; an unexpected error (a bug, not a
    user's mistake) is one line too, exit status 1, unless --debug asks for its traceback."""
    try:
        code = app(prog_name="avrec", standalone_mode=False)
    except _click_errors("NoArgsIsHelpError") as exc:  # a bare group: its help
        typer.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(2)
    except _click_errors("UsageError") as exc:
        where = exc.ctx.command_path if exc.ctx else "avrec"
        typer.echo(
            f"error: {exc.format_message()} (see {where} --help)".replace("\n", " "), err=True
        )
        sys.exit(2)
    except _click_errors("Abort"):
        typer.echo("error: aborted", err=True)
        sys.exit(1)
    except _click_errors("ClickException") as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        if common.DEBUG:
            raise
        typer.echo(
            f"error: {type(exc).__name__}: {exc} (an avrec bug? run with --debug for "
            "the traceback)".replace("\n", " "),
            err=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
