"""``avrec evaluate``: models side by side under a protocol, with a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from avrec.cli.common import (
    Cluster,
    UserError,
    Workers,
    cluster_client,
    handles_errors,
    require_file,
)


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 0:
        raise UserError(f"{what} must be non-negative integers, got {text!r}")
    return values


def _configs(path: Path) -> dict:
    try:
        configs = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    if not isinstance(configs, dict) or not all(isinstance(v, dict) for v in configs.values()):
        raise UserError(f"{path}: expected a JSON object {{model: {{setting: value}}}}")
    from pydantic import ValidationError

    from avrec.models.registry import get_model_class

    for name, settings in configs.items():
        try:
            get_model_class(name).Config(**settings)
        except KeyError as exc:
            raise UserError(f"{path}: {exc.args[0]}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise UserError(f"{path}: model {name!r}, setting {where!r}: {first['msg']}") from None
    return configs


def evaluate(
    dataset_dir: Annotated[Path, typer.Argument(help="dataset folder (or MovieLens folder)")],
    protocol: Annotated[
        str, typer.Option(help="random | msr | last | temporal | cold-items | cold-users | kfold")
    ] = "msr",
    models: Annotated[
        str, typer.Option(help="comma-separated model names (baselines are always added)")
    ] = "ease",
    k: Annotated[str, typer.Option("--k", help="cut-offs, e.g. 10,20")] = "10,20",
    seeds: Annotated[str, typer.Option(help="seeds, e.g. 0,1,2")] = "0",
    report: Annotated[Path, typer.Option(help="report folder")] = Path("reports/latest"),
    config: Annotated[
        Path | None, typer.Option(help="JSON file: {model: {setting: value}}")
    ] = None,
    text_features: Annotated[
        bool,
        typer.Option(
            "--text-features/--no-text-features", help="pretrained text vectors as item content"
        ),
    ] = True,
    media: Annotated[
        bool,
        typer.Option(
            "--media/--no-media",
            help="what avrec encode read from the media files (as avrec train)",
        ),
    ] = True,
    cluster: Cluster = None,
    workers: Workers = None,
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            help="business rules file (docs/rules.md): each model's lists are also made with "
            "them, reported as ndcg@k+rules (their cost in accuracy)",
        ),
    ] = None,
) -> None:
    """Train each model on the training part only and rank with training items excluded;
    write results.json, a console table and an HTML report with plots."""
    from avrec.data.loaders import load_dataset
    from avrec.data.trainable import training_problem
    from avrec.evaluation.api import evaluate_to_report
    from avrec.evaluation.protocols import PROTOCOLS
    from avrec.evaluation.report import console_table
    from avrec.models.registry import available_models

    if protocol not in PROTOCOLS:
        raise UserError(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    names = [m.strip() for m in models.split(",") if m.strip()]
    unknown = [m for m in names if m not in available_models()]
    if unknown:
        raise UserError(
            f"unknown model(s) {', '.join(unknown)}; available: {', '.join(available_models())}"
        )
    ks = _ints(k, "--k")
    if min(ks) < 1:
        raise UserError("--k values must be at least 1")
    configs = _configs(require_file(config, "--config")) if config else None
    doc = None
    if rules is not None:
        from avrec.rerank.rules import read_rules

        doc = read_rules(require_file(rules, "--rules"))
    dataset = load_dataset(dataset_dir)
    if doc is not None:  # the catalog's attributes and items, before any training
        from avrec.rerank.rules import compile_rules

        compile_rules(doc, dataset.items)
    problem = training_problem(dataset)
    if problem:
        raise UserError(f"cannot evaluate: {problem}")
    with cluster_client(cluster, workers) as client:
        result = evaluate_to_report(
            dataset,
            protocol,
            names,
            ks,
            _ints(seeds, "--seeds"),
            report,
            configs=configs,
            text_features=text_features,
            media=media,
            log=typer.echo,
            rules=doc,
            client=client,
        )
    console_table(result, ks)
    typer.echo(f"report: {report / 'index.html'}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(handles_errors(evaluate))
