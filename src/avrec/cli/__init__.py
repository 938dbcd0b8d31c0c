"""The ``avrec`` command line: thin commands over the library.

Each command group lives in its own module under ``avrec.cli`` and exposes
``register(app)``; heavy imports happen inside the command functions, so
``avrec --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

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
COMMAND_MODULES = ["data", "encode", "models", "evaluate", "serve", "users", "demo"]


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


def main() -> None:
    """Run the CLI. An unexpected error (a bug, not a user's mistake) is one line too, exit
    status 1, unless --debug asks for its traceback."""
    try:
        app()
    except Exception as exc:
        if common.DEBUG:
            raise
        typer.echo(f"error: {type(exc).__name__}: {exc} (an avrec bug? run with --debug for "
                   "the traceback)".replace("\n", " "), err=True)
        sys.exit(1)
