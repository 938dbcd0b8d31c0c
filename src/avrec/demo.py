"""The demo pipeline on the bundled MovieLens latest-small data:
ingest -> encode -> train -> evaluate -> serve."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from avrec.settings import avrec_home


def demo_data_path() -> Path:
    """The bundled demo dataset (MovieLens latest-small, with its README and license)."""
    return Path(str(files("avrec") / "demo_data" / "ml-latest-small"))


def step_ingest(log: Callable[[str], None], database_url: str | None = None) -> None:
    from avrec.data.loaders import load_dataset
    from avrec.storage.db import get_engine
    from avrec.storage.ingest import ingest

    dataset = load_dataset(demo_data_path())
    log(str(ingest(dataset, get_engine(database_url))))


def step_train(log: Callable[[str], None], database_url: str | None = None,
               model_name: str | None = None) -> Path:
    from avrec.models.base import TrainData
    from avrec.models.registry import DEFAULT_MODEL, create_model
    from avrec.storage.db import get_engine
    from avrec.storage.repository import load_from_db

    dataset = load_from_db(get_engine(database_url))
    name = model_name or DEFAULT_MODEL
    model = create_model(name).fit(TrainData.from_dataset(dataset))
    out = avrec_home() / "models" / name
    model.save(out)
    sample = model.recommend([dataset.interactions["user_id"].iloc[0]], k=5)
    titles = dataset.items.set_index("item_id")["title"]
    log(f"trained {name!r} -> {out}")
    log(f"top 5 for user {sample.user_ids[0]}: " + "; ".join(titles[i] for i in sample.items[0]))
    return out


def run_demo(log: Callable[[str], None], database_url: str | None = None,
             model_name: str | None = None) -> None:
    log(f"avrec home: {avrec_home()}")
    log("[1/2] ingest the bundled MovieLens latest-small data")
    step_ingest(log, database_url)
    log("[2/2] train the default model")
    step_train(log, database_url, model_name)
