"""The ``avrec`` command line: thin commands over the library.

Each command group lives in its own module under ``avrec.cli`` and exposes
``register(app)``; heavy imports happen inside the command functions, so
``avrec --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="avrec",
    help="avrec: recommend audio and video content by understanding it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

#: command modules, in the order their commands appear in --help
COMMAND_MODULES = ["data", "encode", "models", "evaluate", "serve", "demo"]


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
    app()
