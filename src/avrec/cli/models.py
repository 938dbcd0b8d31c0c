"""``avrec train`` and ``avrec recommend`` (the command-line contract of the matching models)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from avrec.cli.common import UserError, handles_errors, require_file, require_model


def train(
    dataset_dir: Annotated[Path, typer.Argument(help="dataset folder (items.csv, interactions.csv, ...)")],
    out: Annotated[Path, typer.Option("--out", help="folder to save the model in")],
    model: Annotated[str | None, typer.Option("--model", help="model name (default: the recommended one)")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="JSON file with the model's settings")] = None,
) -> None:
    """Train a model on a dataset folder and save it. Items in items.csv without interactions
    are cold items; content-aware models can still recommend them."""
    import time

    from avrec.data.loaders import load_dataset
    from avrec.data.trainable import training_problem
    from avrec.models.base import TrainData
    from avrec.models.registry import available_models, create_model, default_model

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
        typer.echo(f"note: {why}; training {name} instead", err=True)
    t0 = time.perf_counter()
    try:
        recommender = create_model(name, settings)
    except ValueError as exc:
        raise UserError(f"{config}: {exc}" + (f" (settings for {name}, trained instead of the default)"
                                              if why else "")) from None
    data = TrainData.from_dataset(dataset)
    if recommender.content_aware:
        _add_cached_media(data, recommender.reads_media)
    recommender.fit(data)
    recommender.save(out)
    typer.echo(f"trained {name} on {dataset.n_interactions:,} interactions, "
               f"{dataset.n_items:,} items in {time.perf_counter() - t0:.1f} s -> {out}")


def _add_cached_media(data, vectors: bool) -> None:
    """Give a content-aware model what ``avrec encode`` has already read from this catalog's
    media files: the videos' on-screen text and speech join the item texts, and models that read
    media (``vectors``) get the image, video and audio vectors. Train itself runs no media
    model (a video takes seconds); it says what it found and what is not encoded yet."""
    from avrec.encoders.understand import cached_media

    found = cached_media(data.items, data.root, ("image", "video", "audio") if vectors else ("video",))
    for name, values in found.texts.items():
        if any(values):
            data.items[name] = values
            typer.echo(f"media: {name.replace('_', ' ')} of {sum(map(bool, values)):,} videos "
                       "joins their text", err=True)
    if vectors:
        data.item_features.update(found.vectors)
        for modality, mat in found.vectors.items():
            n = int((abs(mat).sum(axis=1) > 0).sum())
            typer.echo(f"media: {modality} vectors of {n:,} items", err=True)
    for modality, n in found.missing.items():
        typer.echo(f"note: {n:,} items' {modality} files are not encoded yet, so they are not read; "
                   "`avrec ingest DATASET_DIR` then `avrec encode` reads them", err=True)


def recommend(
    model_dir: Annotated[Path, typer.Argument(help="a folder written by avrec train")],
    input: Annotated[Path, typer.Option("--input", help="requests, one JSON object per line")],
    output: Annotated[Path, typer.Option("--output", help="where to write one JSON line per request")],
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
