"""The demo pipeline on the bundled MovieLens latest-small data:
ingest -> encode -> train -> evaluate -> serve."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from avrec.settings import avrec_home

Log = Callable[[str], None]


def demo_data_path() -> Path:
    """The bundled demo dataset (MovieLens latest-small, with its README and license)."""
    return Path(str(files("avrec") / "demo_data" / "ml-latest-small"))


def step_ingest(log: Log, database_url: str | None = None) -> None:
    from avrec.data.loaders import load_dataset
    from avrec.storage.db import get_engine
    from avrec.storage.ingest import ingest

    dataset = load_dataset(demo_data_path())
    log("  " + str(ingest(dataset, get_engine(database_url))))


def _dataset(database_url: str | None):
    from avrec.storage.db import get_engine
    from avrec.storage.repository import load_from_db

    return load_from_db(get_engine(database_url))


def step_encode(log: Log, database_url: str | None = None) -> None:
    """Text vectors of every item (English and multilingual), cached by content hash."""
    from avrec.encoders.pipeline import encode_item_texts

    items = _dataset(database_url).items
    for name in ("text-en", "text-multi"):
        vectors = encode_item_texts(items, name, progress=True)
        log(
            f"  {name}: {vectors.shape[0]:,} items x {vectors.shape[1]} dims "
            "(cached for the next run)"
        )


def step_train(log: Log, database_url: str | None = None, model_name: str | None = None) -> Path:
    from avrec.models.base import TrainData
    from avrec.models.registry import DEFAULT_MODEL, create_model

    dataset = _dataset(database_url)
    name = model_name or DEFAULT_MODEL
    model = create_model(name).fit(TrainData.from_dataset(dataset))
    out = avrec_home() / "models" / name
    model.save(out)
    user = dataset.interactions["user_id"].iloc[0]
    sample = model.recommend([user], k=5, explain=True)
    assert sample.explanations is not None  # explain=True fills them
    titles = dataset.items.set_index("item_id")["title"]
    log(f"  trained {name!r} -> {out}")
    log(f"  top 5 for user {user}:")
    for item, why in zip(sample.items[0], sample.explanations[0], strict=True):
        log(f"    {titles[item]} — {why}")
    query = model.recommend([None], k=3, queries=["a heartwarming animated film for kids"])
    log(
        "  'a heartwarming animated film for kids': " + "; ".join(titles[i] for i in query.items[0])
    )
    return out


def step_evaluate(log: Log, database_url: str | None = None, model_name: str | None = None) -> Path:
    from avrec.evaluation.api import evaluate_to_report
    from avrec.evaluation.report import console_table
    from avrec.models.registry import DEFAULT_MODEL

    report = avrec_home() / "reports" / "demo"
    name = model_name or DEFAULT_MODEL
    result = evaluate_to_report(
        _dataset(database_url),
        "random",
        [name],
        [10, 20],
        [0],
        report,
        configs={name: {"query_encoder": None}} if name in ("hybrid", "content") else None,
        log=lambda m: log("  " + m),
    )
    console_table(result, [10, 20])
    log(f"  report: {report / 'index.html'}")
    return report


def run_demo(
    log: Log,
    database_url: str | None = None,
    model_name: str | None = None,
    serve: bool = True,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    log(f"avrec home: {avrec_home()}")
    log("[1/5] ingest the bundled MovieLens latest-small data into the database")
    step_ingest(log, database_url)
    log("[2/5] understand the items: pretrained text encoders")
    step_encode(log, database_url)
    log("[3/5] train the recommended model")
    model_dir = step_train(log, database_url, model_name)
    log("[4/5] evaluate against the baselines (random 80/20 split per user)")
    step_evaluate(log, database_url, model_name)
    if not serve:
        log("[5/5] serving skipped (--no-serve); start it with: avrec serve")
        return
    log("[5/5] serve the API and the web page")
    import uvicorn

    from avrec.service.app import create_app
    from avrec.service.settings import ServiceSettings

    app = create_app(ServiceSettings(model_dir=model_dir, database_url=database_url))
    log(
        f"  open http://{host}:{port}/ in a browser (API docs: http://{host}:{port}/docs); "
        "Ctrl-C stops"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
