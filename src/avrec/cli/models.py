"""``avrec train`` and ``avrec recommend`` (the command-line contract of the matching models)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from avrec.cli.common import UserError, handles_errors, require_file, require_model


def train(
    dataset_dir: Annotated[
        Path, typer.Argument(help="dataset folder (items.csv, interactions.csv, ...)")
    ],
    out: Annotated[Path, typer.Option("--out", help="folder to save the model in")],
    model: Annotated[
        str | None, typer.Option("--model", help="model name (default: the recommended one)")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="JSON file with the model's settings")
    ] = None,
    media: Annotated[
        bool,
        typer.Option(
            "--media/--no-media",
            help="read the catalog's image, video and audio files (encoded "
            "through the same cache as avrec encode, where not encoded yet)",
        ),
    ] = True,
) -> None:
    """Train a model on a dataset folder and save it. Items in items.csv without interactions
    are cold items; content-aware models can still recommend them. The model gets the same
    item features as ``avrec evaluate`` gives it (avrec.fusion.features.item_features)."""
    import time

    from avrec.data.loaders import load_dataset
    from avrec.data.trainable import training_problem
    from avrec.models.base import TrainData
    from avrec.models.registry import (
        available_models,
        create_model,
        default_model,
        large_catalog_settings,
    )

    if model is not None and model not in available_models():
        raise UserError(f"unknown model {model!r}; available: {', '.join(available_models())}")
    settings = {}
    if config:
        try:
            settings = json.loads(require_file(config, "--config").read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"{config}: invalid JSON: {exc}") from None
        if not isinstance(settings, dict):
            raise UserError(f"{config}: expected a JSON object {{setting: value}}")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder to save the model in")
    dataset = load_dataset(dataset_dir)
    problem = training_problem(dataset)
    if problem:
        raise UserError(f"cannot train: {problem}")
    name, why = (model, None) if model is not None else default_model(dataset.n_items)
    if why:  # the recommended model does not fit this catalog here
        settings = large_catalog_settings(settings)
        typer.echo(f"note: {why}; training {name} with its sparse backbone instead", err=True)
    t0 = time.perf_counter()
    try:
        recommender = create_model(name, settings)
    except ValueError as exc:
        raise UserError(
            f"{config}: {exc}"
            + (f" (settings for {name}, trained instead of the default)" if why else "")
        ) from None
    # content-aware models get the videos' texts; models that read media also their vectors
    modalities = ("image", "video", "audio") if recommender.reads_media else ("video",)
    data = TrainData.from_dataset(
        *_featurize(dataset, media and recommender.content_aware, modalities)
    )
    recommender.fit(data)
    recommender.save(out)
    typer.echo(
        f"trained {name} on {dataset.n_interactions:,} interactions, "
        f"{dataset.n_items:,} items in {time.perf_counter() - t0:.1f} s -> {out}"
    )
    for note in recommender.time_capped_:  # the model is not the one its settings describe
        typer.echo(f"note: {note} (a wall-clock cap of the settings)", err=True)


def _featurize(dataset, media: bool, modalities: tuple[str, ...]):
    """The dataset and item features of the one feature path, media files encoded where the
    cache lacks them (with progress bars); says what the media gave."""
    from avrec.fusion.features import featurize

    return featurize(
        dataset,
        media=media,
        modalities=modalities,
        encode_missing=media,
        progress=True,
        log=lambda line: typer.echo(line, err=True),
    )


def recommend(
    model_dir: Annotated[Path, typer.Argument(help="a folder written by avrec train")],
    input: Annotated[Path, typer.Option("--input", help="requests, one JSON object per line")],
    output: Annotated[
        Path, typer.Option("--output", help="where to write one JSON line per request")
    ],
    k: Annotated[int, typer.Option("--k", min=1, max=10_000)] = 10,
    explain: Annotated[bool, typer.Option("--explain/--no-explain")] = True,
) -> None:
    """Recommend for a file of requests, batched."""
    from avrec.models.base import Recommender
    from avrec.models.requests import read_requests, run_requests, unknown_ids, write_jsonl

    requests = read_requests(require_file(input, "--input"))
    if output.is_dir():
        raise UserError(f"--output {output} is a folder; give a file name")
    if not output.parent.is_dir():
        raise UserError(f"--output {output}: folder {output.parent} does not exist")
    model = Recommender.load(require_model(model_dir))
    for note in unknown_ids(model, requests):
        typer.echo(f"warning: {input}: {note}", err=True)
    write_jsonl(run_requests(model, requests, k, explain), output)
    typer.echo(f"{len(requests)} requests -> {output}")


def register(app: typer.Typer) -> None:
    app.command("train")(handles_errors(train))
    app.command("recommend")(handles_errors(recommend))
