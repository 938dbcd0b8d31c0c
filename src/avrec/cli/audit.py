"""``avrec audit privacy MODEL_DIR DATASET_DIR``: a membership-inference audit of a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from avrec.cli.common import handles_errors, require_model

audit_app = typer.Typer(help="Audits of trained models.", no_args_is_help=True)


def privacy(
    model_dir: Annotated[Path, typer.Argument(help="a folder written by avrec train")],
    dataset_dir: Annotated[
        Path,
        typer.Argument(help="a dataset folder with people the model was trained on and others"),
    ],
    seed: Annotated[int, typer.Option(help="which item of each person is hidden")] = 0,
    max_people: Annotated[
        int, typer.Option("--max-people", min=10, help="people per group at most")
    ] = 2_000,
) -> None:
    """Membership inference: can the model's rankings tell the people it was trained on from
    the others? Prints the attack's AUC (0.5: it cannot) with the group sizes, as JSON."""
    from avrec.data.loaders import load_dataset
    from avrec.evaluation.audit import membership_audit
    from avrec.models.base import Recommender

    model = Recommender.load(require_model(model_dir))
    result = membership_audit(model, load_dataset(dataset_dir), seed, max_people)
    typer.echo(json.dumps(result, indent=2))


def register(app: typer.Typer) -> None:
    audit_app.command("privacy")(handles_errors(privacy))
    app.add_typer(audit_app, name="audit")
