"""``avrec train`` and ``avrec recommend`` (the command-line contract of the matching models)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from avrec.cli.common import (
    Cluster,
    DbUrl,
    UserError,
    Workers,
    cluster_client,
    handles_errors,
    require_file,
    require_model,
)


def train(
    out: Annotated[Path, typer.Option("--out", help="folder to save the model in")],
    dataset_dir: Annotated[
        Path | None,
        typer.Argument(
            help="dataset folder (items.csv, interactions.csv, ...); not with --from-db"
        ),
    ] = None,
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
    privacy_epsilon: Annotated[
        float | None,
        typer.Option(
            "--privacy-epsilon",
            help="train with user-level differential privacy at this epsilon (models that "
            "support it; without --model: dp-ease; --model two-tower: dp-two-tower)",
        ),
    ] = None,
    privacy_delta: Annotated[
        float | None,
        typer.Option(
            "--privacy-delta",
            help="delta of --privacy-epsilon (default min(1e-5, 1/(10 users)))",
        ),
    ] = None,
    from_db: Annotated[
        bool,
        typer.Option(
            "--from-db",
            help="train on the database: its catalog, interactions and the service's feedback "
            "events (people who opted out of training left out)",
        ),
    ] = False,
    database_url: DbUrl = None,
    event_window_days: Annotated[
        float | None,
        typer.Option("--event-window-days", help="with --from-db: only events this recent"),
    ] = None,
    min_events: Annotated[
        int,
        typer.Option("--min-events", help="with --from-db: leave out people with fewer events"),
    ] = 1,
    register: Annotated[
        bool,
        typer.Option(
            "--register", help="record the model as a version in the registry (avrec models)"
        ),
    ] = False,
    cluster: Cluster = None,
    workers: Workers = None,
) -> None:
    """Train a model on a dataset folder (or on the database, ``--from-db``) and save it.
    Items without interactions are cold items; content-aware models can still recommend them.
    The model gets the same item features as ``avrec evaluate`` gives it
    (avrec.fusion.features.item_features). With ``--workers``/``--cluster`` the sparse
    backbone's neighbour search and solves run as Dask tasks (the same weights)."""
    import time

    from avrec.data.loaders import load_dataset
    from avrec.data.trainable import training_problem
    from avrec.models.base import TrainData
    from avrec.models.capabilities import ChoosesTextEncoder, TrainsPrivately
    from avrec.models.registry import (
        available_models,
        create_model,
        default_model,
        large_catalog_settings,
    )

    if model is not None and model not in available_models():
        raise UserError(f"unknown model {model!r}; available: {', '.join(available_models())}")
    _check_privacy_options(privacy_epsilon, privacy_delta)
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
    if from_db == (dataset_dir is not None):
        raise UserError("give a dataset folder or --from-db (one of the two)")
    source = None
    if dataset_dir is None:
        source = _from_db(database_url, event_window_days, min_events)
        dataset = source.dataset
    else:
        dataset = load_dataset(dataset_dir)
    problem = training_problem(dataset)
    if problem:
        raise UserError(f"cannot train: {problem}")
    if privacy_epsilon is not None:  # delta against the number of users, before any work
        from avrec.models.private.accountant import check_budget, default_delta

        n_users = dataset.n_users
        check_budget(privacy_epsilon, privacy_delta or default_delta(n_users), n_users)
    name, why = (model, None) if model is not None else default_model(dataset.n_items)
    if model is None and privacy_epsilon is not None:  # the hybrid's other parts are not private
        name, why = PRIVATE_DEFAULT, None
        typer.echo(
            f"note: --privacy-epsilon: training {name}, the private item-item model (the default "
            "hybrid's other parts are not private)",
            err=True,
        )
    if model in PRIVATE_VARIANTS and privacy_epsilon is not None:
        name = PRIVATE_VARIANTS[model]
        typer.echo(
            f"note: --privacy-epsilon: training {name}, {model} trained by user-level DP-SGD",
            err=True,
        )
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
    if privacy_epsilon is not None:
        if not isinstance(recommender, TrainsPrivately):
            raise UserError(
                f"model {name!r} cannot train with differential privacy (--privacy-epsilon); "
                "use --model dp-ease, dp-popularity or two-tower"
            )
        recommender = recommender.with_budget(privacy_epsilon, privacy_delta)
    # content-aware models get the videos' texts; models that read media also their vectors
    modalities = ("image", "video", "audio") if recommender.reads_media else ("video",)
    # the catalog's text vectors from the encoder the model reads them with (by catalog size)
    text_encoder = (
        recommender.text_encoder(dataset.n_items)
        if isinstance(recommender, ChoosesTextEncoder)
        else "text-en"
    )
    featurized, features = _featurize(
        dataset, media and recommender.content_aware, modalities, text_encoder
    )
    data = TrainData.from_dataset(featurized, features, text_encoder=text_encoder)
    with cluster_client(cluster, workers):
        recommender.fit(data)
    recommender.save(out)
    if source is not None:  # what the model learned from, with the event watermark
        (out / "training_data.json").write_text(json.dumps(source.record(), indent=2))
        typer.echo(
            f"from the database: {source.events_read:,} events read (up to event "
            f"{source.watermark}), {source.positives_added:,} pairs added, "
            f"{source.negatives:,} negatives"
        )
    typer.echo(
        f"trained {name} on {dataset.n_interactions:,} interactions, "
        f"{dataset.n_items:,} items in {time.perf_counter() - t0:.1f} s -> {out}"
    )
    if register:
        from avrec.storage.db import get_engine
        from avrec.storage.registry import register as record

        version = record(get_engine(database_url), out).version
        typer.echo(f"registered as {version} (avrec models promote {version} serves it)")
    learned = recommender.manifest_extra().get("learned") or {}
    for part, values in learned.items():  # settings the model chose in fit (e.g. recency)
        shown = ", ".join(f"{k}={v}" for k, v in values.items() if k != "validation")
        typer.echo(f"learned {part}: {shown} (also in {out / 'manifest.json'})")
    for note in recommender.time_capped_:  # the model is not the one its settings describe
        typer.echo(f"note: {note} (a wall-clock cap of the settings)", err=True)
    if isinstance(recommender, TrainsPrivately) and recommender.privacy() is not None:
        typer.echo(f"privacy (also in {out / 'manifest.json'}):")
        typer.echo(json.dumps(recommender.privacy(), indent=2))


def _from_db(database_url: str | None, window_days: float | None, min_events: int):
    """The training data the database holds (``feedback.training.training_from_db``)."""
    from avrec.feedback.training import EventPolicy, training_from_db
    from avrec.storage.db import get_engine

    return training_from_db(get_engine(database_url), EventPolicy(window_days, min_events))


#: the model ``train --privacy-epsilon`` trains when no ``--model`` is given
PRIVATE_DEFAULT = "dp-ease"
#: ``--model`` names whose private version ``train --privacy-epsilon`` trains instead
PRIVATE_VARIANTS = {"two-tower": "dp-two-tower"}


def _check_privacy_options(epsilon: float | None, delta: float | None) -> None:
    if delta is not None and epsilon is None:
        raise UserError("--privacy-delta needs --privacy-epsilon")
    if epsilon is not None and not (0 < epsilon < float("inf")):
        raise UserError(f"--privacy-epsilon must be a positive number, got {epsilon}")
    if delta is not None and not 0 < delta < 1:
        raise UserError(f"--privacy-delta must be in (0, 1), got {delta}")


def _featurize(dataset, media: bool, modalities: tuple[str, ...], text_encoder: str = "text-en"):
    """The dataset and item features of the one feature path, media files encoded where the
    cache lacks them (with progress bars); says what the media gave."""
    from avrec.fusion.features import featurize

    return featurize(
        dataset,
        text_encoder=text_encoder,
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
    rerank: Annotated[
        str,
        typer.Option(
            "--rerank",
            help="re-ranking of each list: none, mmr, dpp or calibrated (a request's "
            '"rerank" field overrides it)',
        ),
    ] = "dpp",
    diversity: Annotated[
        float,
        typer.Option(
            "--diversity",
            help="0-1: how much relevance to trade for diversity (0: the score order; a "
            'request\'s "diversity" field overrides it)',
        ),
    ] = 0.0,
    debias: Annotated[
        float,
        typer.Option(
            "--debias",
            help="0-10: popularity penalty, in standard deviations of the scores per unit "
            'of z-scored log popularity (a request\'s "debias" field overrides it)',
        ),
    ] = 0.0,
    cascade: Annotated[
        bool | None,
        typer.Option(
            "--cascade/--no-cascade",
            help="retrieve 500 candidates per request (item-item neighbours of the history, "
            "nearest item vectors, the request's text, popular items) and rank only those "
            "with the model's exact scores; default: on for catalogs of 50,000 items or more "
            "when the model scores a few items for less than all (sparse-ease)",
        ),
    ] = None,
    cluster: Cluster = None,
    workers: Workers = None,
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            help="business rules file (.yaml or .json: filters, boosts, caps, pins, "
            "freshness; see docs/rules.md), applied to every list",
        ),
    ] = None,
) -> None:
    """Recommend for a file of requests, batched, optionally re-ranked for diversity,
    calibration to the person's genres or less popular items; with ``--cluster``/``--workers``
    the batches run as Dask tasks (same answers, in the same order)."""
    from avrec.models.base import Recommender
    from avrec.models.requests import read_requests, unknown_ids, write_jsonl
    from avrec.rerank.apply import RerankOptionError, check_options
    from avrec.rerank.requests import request_options, rerank_requests, rerank_requests_on

    try:
        defaults = check_options(rerank, diversity, debias)
    except RerankOptionError as exc:  # its message starts with the setting's name
        raise UserError(f"--{exc}") from None
    requests = read_requests(require_file(input, "--input"))
    options = request_options(requests, defaults, str(input))
    if output.is_dir():
        raise UserError(f"--output {output} is a folder; give a file name")
    if not output.parent.is_dir():
        raise UserError(f"--output {output}: folder {output.parent} does not exist")
    doc = None
    if rules is not None:
        from avrec.rerank.rules import read_rules

        doc = read_rules(require_file(rules, "--rules"))
    model = Recommender.load(require_model(model_dir))
    compiled = None
    if doc is not None:
        from avrec.cli.rules import frame_of
        from avrec.rerank.rules import compile_rules

        compiled = compile_rules(doc, frame_of(model))
    for note in unknown_ids(model, requests):
        typer.echo(f"warning: {input}: {note}", err=True)
    from avrec.index.cascade import Cascade, use_cascade

    if cascade is None:  # Dask batches answer with the full ranking
        cascade = use_cascade(model) and cluster is None and workers is None
    if cascade and (cluster is not None or workers is not None):
        raise UserError("--cascade runs in-process; leave out --cluster/--workers")
    via = Cascade(model) if cascade else None
    with cluster_client(cluster, workers) as client:
        if client is None:
            answers = rerank_requests(model, requests, options, k, explain, compiled, via)
        else:
            answers = rerank_requests_on(
                client, str(model_dir.resolve()), requests, options, k, explain, compiled
            )
    write_jsonl(answers, output)
    typer.echo(f"{len(requests)} requests -> {output}")


def register(app: typer.Typer) -> None:
    app.command("train")(handles_errors(train))
    app.command("recommend")(handles_errors(recommend))
