"""``avrec models``: the registry of trained model versions and which one is served
(``list``, ``show V``, ``register DIR``, ``promote V``, ``rollback``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from avrec.cli.common import DbUrl, UserError, handles_errors, require_file

models_app = typer.Typer(
    help="Model versions: register, list, show, promote, roll back.", no_args_is_help=True
)


def _engine(database_url: str | None):
    from avrec.storage.db import get_engine

    return get_engine(database_url)


def list_versions(database_url: DbUrl = None) -> None:
    """Every registered version, oldest first; ``*`` marks the one served."""
    from avrec.storage import registry

    engine = _engine(database_url)
    current = registry.promoted(engine)
    rows = registry.versions(engine)
    if not rows:
        typer.echo("no model registered (avrec models register DIR, or avrec train --register)")
    for v in rows:
        mark = "*" if current is not None and v.version == current.version else " "
        watermark = v.meta.get("event_watermark")
        typer.echo(
            f"{mark} {v.version}  {v.created_at}  {v.path}"
            + (f"  events<= {watermark}" if watermark is not None else "")
        )


def show(
    version: Annotated[str, typer.Argument(help="a version id (avrec models list)")],
    database_url: DbUrl = None,
) -> None:
    """One version: its folder, config, training data, metrics, privacy, what the model
    learned of its own settings, promotions."""
    from avrec.storage import registry

    engine = _engine(database_url)
    found = registry.get(engine, version)
    assert found is not None
    manifest = json.loads((found.path / "manifest.json").read_text())
    out = {
        "version": found.version,
        "model": found.model,
        "path": str(found.path),
        "registered_at": str(found.created_at),
        **found.meta,
        "privacy": manifest.get("privacy"),
        # settings the model chose in fit (the hybrid's recency: values and validation table)
        "learned": manifest.get("learned"),
        "promotions": [
            {"promoted_at": str(at), "note": note}
            for v, note, at in registry.history(engine)
            if v == version
        ],
    }
    typer.echo(json.dumps(out, indent=2, default=str))


def register_folder(
    model_dir: Annotated[Path, typer.Argument(help="a saved model folder")],
    metrics: Annotated[
        Path | None, typer.Option("--metrics", help="JSON file of the model's metrics")
    ] = None,
    database_url: DbUrl = None,
) -> None:
    """Register a saved model folder as a version (printed)."""
    from avrec.storage import registry

    values = json.loads(require_file(metrics, "--metrics").read_text()) if metrics else None
    typer.echo(registry.register(_engine(database_url), model_dir, values).version)


def promote(
    version: Annotated[str, typer.Argument(help="a version id (avrec models list)")],
    database_url: DbUrl = None,
) -> None:
    """Serve this version: a running `avrec serve` that follows the registry swaps to it."""
    from avrec.storage import registry

    done = registry.promote(_engine(database_url), version)
    typer.echo(f"promoted {done.version} ({done.path})")


def rollback(database_url: DbUrl = None) -> None:
    """Serve again the version served before the current one."""
    from avrec.storage import registry

    done = registry.rollback(_engine(database_url))
    typer.echo(f"rolled back to {done.version} ({done.path})")


def retrain(
    out_root: Annotated[
        Path, typer.Option("--out-root", help="folder that each candidate model is saved under")
    ],
    model: Annotated[
        str | None, typer.Option("--model", help="model to train (default: the recommended one)")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="JSON file with the model's settings")
    ] = None,
    every: Annotated[
        float | None,
        typer.Option("--every", min=1, help="run again every this many seconds (default: once)"),
    ] = None,
    min_new_events: Annotated[
        int, typer.Option("--min-new-events", min=1, help="retrain only after this many events")
    ] = 1,
    margin: Annotated[
        float,
        typer.Option("--margin", min=0, help="NDCG@10 loss tolerated by the promotion gate"),
    ] = 0.0,
    event_window_days: Annotated[
        float | None, typer.Option("--event-window-days", help="only events this recent")
    ] = None,
    warm_share: Annotated[
        float,
        typer.Option(
            "--warm-share",
            min=0,
            max=1,
            help="warm-start from the served version (same model, config and catalog; ease, "
            "hybrid: when the changed users' rows touch at most this share of the items; als: "
            "any change); 0: always a full fit",
        ),
    ] = 0.05,
    database_url: DbUrl = None,
) -> None:
    """Train a candidate on the database (catalog, interactions, feedback events), check it
    against the served version on held-out recent interactions, and promote it only if it is
    not significantly worse; one line per round says what happened and why. Once by default
    (cron-friendly); --every repeats."""
    import time

    from avrec.evaluation.retrain import retrain_once, summary
    from avrec.feedback.training import EventPolicy
    from avrec.models.registry import available_models, default_model

    if model is not None and model not in available_models():
        raise UserError(f"unknown model {model!r}; available: {', '.join(available_models())}")
    settings = json.loads(require_file(config, "--config").read_text()) if config else None
    engine = _engine(database_url)
    policy = EventPolicy(event_window_days)
    while True:
        name = model
        if name is None:
            from avrec.storage.repository import load_from_db

            name = default_model(len(load_from_db(engine).items))[0]
        result = retrain_once(
            engine, out_root, name, settings, policy,
            min_new_events=min_new_events, margin=margin, warm_share=warm_share,
        )  # fmt: skip
        typer.echo(summary(result))
        if every is None:
            return
        time.sleep(every)


def register(app: typer.Typer) -> None:
    app.command("retrain")(handles_errors(retrain))
    models_app.command("list")(handles_errors(list_versions))
    models_app.command("show")(handles_errors(show))
    models_app.command("register")(handles_errors(register_folder))
    models_app.command("promote")(handles_errors(promote))
    models_app.command("rollback")(handles_errors(rollback))
    app.add_typer(models_app, name="models")
