"""``avrec users forget ID`` end to end on a small database: the user's rows go (as with
``users delete``), an EASE model's weights become those of a fit without them, the served
hybrid's backbone is updated and its other parts are listed with a retrain request, which the
next ``retrain_once`` honours (trains, promotes, closes it)."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from avrec.cli import app
from avrec.data import Dataset
from avrec.evaluation.retrain import retrain_once
from avrec.feedback.training import training_from_db
from avrec.models.base import Recommender, TrainData
from avrec.models.registry import create_model
from avrec.storage import registry
from avrec.storage import tables as t
from avrec.storage.db import get_engine
from tests.integration.service_fixtures import build


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    root = tmp_path_factory.mktemp("forget")
    hybrid_dir, url, _ = build(root)
    return root, hybrid_dir, url


def _dataset(url: str) -> Dataset:
    return training_from_db(get_engine(url)).dataset


def _without(ds: Dataset, user: str) -> Dataset:
    inter = ds.interactions
    return Dataset(ds.items, inter[inter.user_id != user], name=ds.name)


def test_forget_removes_the_user_from_ease_exactly_and_asks_a_retrain_for_the_rest(db):
    root, hybrid_dir, url = db
    engine = get_engine(url)
    ease_dir = (
        create_model("ease", {"l2": 20.0})
        .fit(TrainData.from_dataset(_dataset(url)))
        .save(root / "ease")
    )
    version = registry.register(engine, hybrid_dir).version
    registry.promote(engine, version)
    hybrid_before = Recommender.load(hybrid_dir)

    res = CliRunner().invoke(
        app, ["users", "forget", "u5", "--database-url", url, "--model-dir", str(ease_dir)]
    )
    assert res.exit_code == 0, res.output
    assert "deleted user 'u5'" in res.stdout
    assert f"{hybrid_dir}: still learned from them until the next retrain: " in res.stdout
    assert "retrain requested" in res.stdout

    with engine.connect() as conn:
        c = t.interactions.c
        assert conn.execute(select(c.user_id).where(c.user_id == "u5")).first() is None
    refit = create_model("ease", {"l2": 20.0}).fit(TrainData.from_dataset(_dataset(url)))
    ease = Recommender.load(ease_dir)
    assert "u5" not in ease.user_vocab.ids
    assert np.abs(ease.weights - refit.weights).max() < 1e-6
    hybrid = Recommender.load(hybrid_dir)
    assert "u5" not in hybrid.user_vocab.ids
    assert np.abs(np.asarray(hybrid.weights) - np.asarray(hybrid_before.weights)).max() > 1e-6
    requests = registry.retrain_requests(engine)
    assert len(requests) == 1 and "vae" in requests[0][1] and "u5" not in requests[0][1]

    # the next round trains without them although no event came, promotes, closes the request
    result = retrain_once(engine, root / "versions", "ease", {"l2": 20.0}, n_bootstrap=50)
    assert result.promoted and "retrain request" in result.reason, result.reason
    assert registry.retrain_requests(engine) == []
    served = Recommender.load(registry.promoted(engine).path)
    assert "u5" not in served.user_vocab.ids
    assert np.abs(served.weights - refit.weights).max() < 1e-6

    again = CliRunner().invoke(app, ["users", "forget", "u5", "--database-url", url])
    assert again.exit_code == 2 and "no trace of user 'u5'" in again.output


def test_retrain_warm_starts_an_ease_from_the_served_version(db):
    root, _, url = db
    engine = get_engine(url)
    retrain_once(engine, root / "warm", "ease", {"l2": 20.0}, n_bootstrap=50)  # or "nothing new"
    assert registry.promoted(engine).model == "ease"
    with engine.begin() as conn:  # two likes after the served version's watermark
        conn.execute(
            t.feedback_events.insert(),
            [{"user_id": "u8", "item_id": "m2", "event": "like"},
             {"user_id": "u9", "item_id": "f3", "event": "like"}],
        )  # fmt: skip
    result = retrain_once(
        engine, root / "warm", "ease", {"l2": 20.0}, n_bootstrap=50, warm_share=1.0, margin=1.0
    )
    assert result.report["final_fit"].startswith("warm start"), result.report
    assert result.report["candidate_fit"].startswith("warm start"), result.report
    made = Recommender.load(registry.get(engine, result.version).path)
    full = create_model("ease", {"l2": 20.0}).fit(TrainData.from_dataset(_dataset(url)))
    assert np.abs(made.weights - full.weights).max() < 1e-6
    cold = retrain_once(engine, root / "warm", "ease", {"l2": 20.0}, n_bootstrap=50)
    assert cold.reason.startswith("nothing new")


def _likes(engine, pairs: list[tuple[str, str]]) -> None:
    with engine.begin() as conn:
        conn.execute(
            t.feedback_events.insert(),
            [{"user_id": u, "item_id": i, "event": "like"} for u, i in pairs],
        )


def test_retrain_warm_starts_the_hybrid_where_it_can_and_fits_it_otherwise(db):
    root, _, url = db
    engine = get_engine(url)
    cfg = {"content": {"query_encoder": None}, "vae": {"weight": 0.0}}

    def round_(share: float):
        return retrain_once(
            engine, root / "hybrid-warm", "hybrid", cfg, n_bootstrap=50, warm_share=share,
            margin=1.0,
        )  # fmt: skip

    _likes(engine, [("u20", "m4"), ("u21", "f3")])
    first = round_(1.0)  # served: another model (or none), so a full fit
    assert first.promoted and first.report["final_fit"].startswith("full fit"), first.report
    _likes(engine, [("u22", "m6"), ("u23", "f5"), ("u40", "f7")])  # u40: a new user
    warm = round_(1.0)
    assert warm.promoted and warm.report["final_fit"].startswith("warm start"), warm.report
    made = Recommender.load(registry.get(engine, warm.version).path)
    assert made.warm_started_["from"] == first.version
    assert made.warm_started_["updated"] == ["backbone"] and "u40" in made.user_vocab.ids
    assert "u40" in made.recommend(["u40"], 3).user_ids
    _likes(engine, [("u24", "m8"), ("u25", "f9")])
    cold = round_(1e-6)  # the update is over the share: a full fit, saying why
    assert "warm-start share" in cold.report["final_fit"], cold.report
    assert Recommender.load(registry.get(engine, cold.version).path).warm_started_ is None
