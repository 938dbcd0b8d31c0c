"""``avrec serve`` (HTTP API + web page) and ``avrec keys create|list|revoke``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avrec.cli.common import DbUrl, UserError, handles_errors


def serve(
    model_dir: Annotated[
        Path | None,
        typer.Option(
            "--model-dir", envvar="AVREC_MODEL_DIR", help="a folder written by avrec train"
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    database_url: DbUrl = None,
    media_root: Annotated[
        Path | None, typer.Option(help="folder that item image paths are relative to")
    ] = None,
    retrieval: Annotated[
        str,
        typer.Option(
            help="auto, model (score the whole catalog), cascade (rank 500 retrieved "
            "candidates with the model's exact scores) or index (search the vector index "
            "with the user's online vector)"
        ),
    ] = "auto",
    index_kind: Annotated[
        str, typer.Option("--index-kind", help="auto, exact, flat, hnsw or ivf")
    ] = "auto",
    nprobe: Annotated[int | None, typer.Option(min=1, help="IVF cells scanned per query")] = None,
    follow_registry: Annotated[
        bool,
        typer.Option(
            "--follow-registry",
            envvar="AVREC_FOLLOW_REGISTRY",
            help="serve the promoted model version (avrec models promote) and swap to a newly "
            "promoted one without a restart",
        ),
    ] = False,
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            envvar="AVREC_RULES_FILE",
            help="business rules file (.yaml or .json, docs/rules.md) applied to every list; "
            "re-read when it changes, replaced by PUT /api/admin/rules",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) and the web page at /."""
    import uvicorn

    from avrec.service.app import create_app
    from avrec.service.settings import ServiceSettings
    from avrec.settings import avrec_home

    if model_dir is None and follow_registry:  # the promoted version, where there is one
        from avrec.storage.db import get_engine
        from avrec.storage.registry import promoted

        current = promoted(get_engine(database_url))
        model_dir = current.path if current is not None else None
    if rules is not None:  # its mistakes in one line before anything starts
        from avrec.cli.common import require_file
        from avrec.rerank.rules import read_rules

        read_rules(require_file(rules, "--rules"))
    model_dir = model_dir or avrec_home() / "models" / "hybrid"
    if not (model_dir / "manifest.json").is_file():
        raise UserError(
            f"{model_dir}: not a saved avrec model (train one with avrec train or avrec demo)"
        )
    try:
        settings = ServiceSettings(
            model_dir=model_dir,
            database_url=database_url,
            media_root=media_root,
            retrieval=retrieval,
            index_kind=index_kind,
            index_options={"nprobe": nprobe} if nprobe else {},
            follow_registry=follow_registry,
            rules_file=rules,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    app = create_app(settings)
    typer.echo(f"avrec serving on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


keys_app = typer.Typer(help="API keys for write and admin endpoints.", no_args_is_help=True)


def create_key(
    name: Annotated[str, typer.Argument(help="who or what the key is for")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="read, write and/or admin (default: write)")
    ] = None,
    database_url: DbUrl = None,
) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    scope = scope or ["write"]
    from avrec.storage.db import get_engine
    from avrec.storage.keys import create_key as make

    if not name.strip():
        raise UserError("the key needs a name (who or what it is for)")
    try:
        typer.echo(make(get_engine(database_url), name, scope))
    except ValueError as exc:
        raise UserError(f"--scope: {exc}") from None


def list_keys(database_url: DbUrl = None) -> None:
    """Name, scopes, creation and last use of every key (never the key itself)."""
    from avrec.storage.db import get_engine
    from avrec.storage.keys import list_keys as rows

    def when(value) -> str:
        return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "never"

    keys = rows(get_engine(database_url))
    if not keys:
        typer.echo("no API keys (create one with avrec keys create NAME)")
        return
    typer.echo(f"{'name':24s} {'scopes':16s} {'created':19s}  last used")
    for k in keys:
        typer.echo(
            f"{k['name']:24s} {','.join(k['scopes']):16s} {when(k['created']):19s}  "
            f"{when(k['last_used'])}"
        )


def revoke_key(
    name: Annotated[str, typer.Argument(help="the key's name (avrec keys list)")],
    database_url: DbUrl = None,
) -> None:
    """Delete the key(s) with this name: requests using them are refused from now on."""
    from avrec.storage.db import get_engine
    from avrec.storage.keys import revoke_key as revoke

    n = revoke(get_engine(database_url), name)
    if not n:
        raise UserError(f"no API key named {name!r}; see avrec keys list")
    typer.echo(f"revoked {n} key(s) named {name!r}")


def register(app: typer.Typer) -> None:
    app.command("serve")(handles_errors(serve))
    keys_app.command("create")(handles_errors(create_key))
    keys_app.command("list")(handles_errors(list_keys))
    keys_app.command("revoke")(handles_errors(revoke_key))
    app.add_typer(keys_app, name="keys")
