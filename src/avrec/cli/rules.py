"""``avrec rules check``: validate a business-rules file (and compile it against a catalog)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from avrec.cli.common import handles_errors, require_file

rules_app = typer.Typer(
    help="Business rules (filters, boosts, caps, pins, freshness): see docs/rules.md.",
    no_args_is_help=True,
)


def frame_of(model):
    """A model's catalog, rows in its item order (ids only where it kept none)."""
    if model.catalog is not None:
        return model.catalog
    import pandas as pd

    return pd.DataFrame({"item_id": model.fitted_parts()[1].ids})


def catalog_frame(folder: Path):
    """The catalog of a model folder (``catalog.jsonl``) or a dataset folder."""
    from avrec.cli.common import UserError

    if (folder / "manifest.json").is_file():
        from avrec.models.base import Recommender

        return frame_of(Recommender.load(folder))
    if not folder.is_dir():
        raise UserError(f"--catalog {folder}: no such folder (a dataset or model folder)")
    from avrec.data.loaders import load_dataset

    return load_dataset(folder).items


def check(
    file: Annotated[Path, typer.Argument(help="rules file (.yaml, .yml or .json)")],
    catalog: Annotated[
        Path | None,
        typer.Option(
            "--catalog", help="dataset or model folder: also check the attributes and items"
        ),
    ] = None,
) -> None:
    """Check a rules file; a problem is one line naming its line, exit status 2."""
    from avrec.rerank.rules import compile_rules, read_rules

    doc = read_rules(require_file(file, "rules file"))
    kinds = Counter(rule.kind for rule in doc.rules.rules)
    summary = ", ".join(f"{n} {kind}" for kind, n in kinds.items()) or "no rules"
    if catalog is None:
        typer.echo(f"{file}: {len(doc.rules.rules)} rule(s) valid ({summary})")
        return
    frame = catalog_frame(catalog)
    compiled = compile_rules(doc, frame)
    allowed = compiled.allowed()
    left = len(frame) if allowed is None else int(allowed.sum())
    typer.echo(
        f"{file}: {len(doc.rules.rules)} rule(s) valid against {catalog} ({summary}); "
        f"the filters leave {left:,} of {len(frame):,} items"
    )
    for weight in compiled.weights:
        typer.echo(f"  {weight.name}: adds to {int((weight.values != 0).sum()):,} items")
    for cap in compiled.caps:
        values = len({g for row in cap.groups for g in row})
        typer.echo(f"  {cap.name}: {cap.field} has {values:,} values in the catalog")


def register(app: typer.Typer) -> None:
    rules_app.command("check")(handles_errors(check))
    app.add_typer(rules_app, name="rules")
