"""The retraining round: the first candidate is promoted, nothing happens without new events,
a candidate as good as the served one is promoted and a clearly worse one is registered but not
promoted, with the gate's reason."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from avrec.cli import app as cli
from avrec.evaluation.retrain import holdout_new, retrain_once
from avrec.feedback.training import training_from_db
from avrec.storage import registry
from avrec.storage import tables as t
from avrec.storage.db import get_engine
from tests.integration.service_fixtures import build


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    root = tmp_path_factory.mktemp("retrain")
    _, url, _ = build(root)
    return root, url


def _likes(url, rows):
    with get_engine(url).begin() as conn:
        conn.execute(
            insert(t.feedback_events),
            [{"user_id": u, "item_id": i, "event": "like"} for u, i in rows],
        )


def _unseen_music(url, users):
    """For each user, a music item not in their history (a like the served model can guess)."""
    inter = training_from_db(get_engine(url)).dataset.interactions
    out = []
    for user in users:
        seen = set(inter[inter.user_id == user].item_id)
        out.append((user, next(f"m{n}" for n in range(0, 30, 2) if f"m{n}" not in seen)))
    return out


def test_the_holdout_is_what_came_after_the_watermark():
    data = training_from_db.__globals__["Dataset"](
        pd.DataFrame({"item_id": ["a", "b", "c"]}),
        pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["a", "b", "c"]}),
    )
    events = pd.DataFrame(
        {"id": [1, 2, 3, 4], "user_id": ["u", "u", "v", "v"], "item_id": ["a", "b", "c", "a"],
         "event": ["like", "like", "like", "dislike"], "value": None, "watch_fraction": None}
    )  # fmt: skip
    train, held = holdout_new(data, events, watermark=1)
    assert held == {"u": "b", "v": "c"}  # v's last positive; a dislike is not held out
    kept = train.interactions
    assert list(zip(kept.user_id, kept.item_id, strict=True)) == [("u", "a")]
    assert holdout_new(data, events, watermark=4)[1] == {}


def test_the_loop_promotes_through_the_gate(db):
    root, url = db
    engine = get_engine(url)
    run = CliRunner().invoke
    first = run(cli, ["retrain", "--out-root", str(root / "loop"), "--model", "ease",
                      "--database-url", url])  # fmt: skip
    assert first.exit_code == 0 and "promoted: promote: no version is served yet" in first.output
    served = registry.promoted(engine)
    assert served is not None and served.model == "ease"
    idle = retrain_once(engine, root / "loop", "ease")
    assert not idle.promoted and idle.version is None and "nothing new" in idle.reason
    _likes(url, _unseen_music(url, [f"u{n}" for n in range(0, 40, 2)]))
    again = retrain_once(engine, root / "loop", "ease", margin=0.05)
    assert again.promoted and "not significantly worse" in again.reason, again.reason
    assert registry.promoted(engine).version == again.version
    report = json.loads(
        (registry.get(engine, again.version).path / "retrain_report.json").read_text()
    )
    assert report["holdout_people"] == 20 and report["training_data"]["events_read"] == 20
    _likes(url, _unseen_music(url, [f"u{n}" for n in range(0, 40, 2)]))
    worse = retrain_once(engine, root / "loop", "popularity")
    assert (
        not worse.promoted
        and "keep serving" in worse.reason
        and "significantly worse" in worse.reason
    )
    assert registry.promoted(engine).version == again.version  # still the served one
    assert (
        registry.get(engine, worse.version).meta["metrics"]["candidate_ndcg"]
        < report["candidate_ndcg"]
    )
