"""Training from the database: the service's feedback events reach the next model, through
one table of signals, with a window, a minimum count, negatives, consent and a watermark."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from avrec.cli import app as cli
from avrec.feedback.training import EventPolicy, event_signals, events_to_pairs, training_from_db
from avrec.models.base import Recommender, TrainData
from avrec.models.registry import create_model
from avrec.service.app import create_app
from avrec.service.security import visitor_token
from avrec.service.settings import ServiceSettings
from avrec.storage.consent import set_training_consent
from avrec.storage.db import get_engine
from avrec.storage.keys import create_key
from tests.integration.service_fixtures import build

SECRET = "fromdb"
NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def test_each_event_kind_has_its_signal():
    events = pd.DataFrame(
        {
            "event": [
                "like",
                "dislike",
                "skip",
                "view",
                "click",
                "purchase",
                "play",
                "play",
                "play",
                "rating",
                "rating",
            ],
            "value": [None] * 9 + [5.0, 2.0],
            "watch_fraction": [None] * 6 + [0.9, None, 0.1, None, None],
        }
    )
    assert event_signals(events).tolist() == pytest.approx(
        [1.0, -1.0, -0.5, 0.3, 0.5, 1.0, 0.9, 0.5, -0.25, 1.0, -0.5]
    )


def _events(rows):
    return pd.DataFrame(
        [
            {
                "id": n,
                "user_id": u,
                "item_id": i,
                "event": e,
                "value": None,
                "watch_fraction": None,
                "created_at": NOW - timedelta(days=d),
            }
            for n, (u, i, e, d) in enumerate(rows, start=1)
        ]
    )


def test_pairs_sum_their_events_within_the_window_and_count():
    events = _events(
        [
            ("a", "x", "like", 1),
            ("a", "x", "skip", 1),
            ("a", "y", "dislike", 2),
            ("a", "z", "like", 40),
            ("b", "x", "like", 1),
        ]
    )
    pos, neg = events_to_pairs(events, EventPolicy(), NOW)
    assert sorted(zip(pos.user_id, pos.item_id, pos.signal, strict=False)) == [
        ("a", "x", 0.5),
        ("a", "z", 1.0),
        ("b", "x", 1.0),
    ]
    assert list(zip(neg.user_id, neg.item_id, strict=False)) == [("a", "y")]
    pos, _ = events_to_pairs(events, EventPolicy(window_days=30), NOW)
    assert ("a", "z") not in set(zip(pos.user_id, pos.item_id, strict=False))  # 40 days old
    pos, _ = events_to_pairs(events, EventPolicy(min_events=2), NOW)
    assert set(pos.user_id) == {"a"}  # b has one event


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The service's catalog with one new music item that a block of music listeners liked
    through the API; one of them opted out of training."""
    root = tmp_path_factory.mktemp("fromdb")
    model_dir, url, _ = build(root)
    engine = get_engine(url)
    write = {"X-API-Key": create_key(engine, "fromdb-writer", ["write"])}
    settings = ServiceSettings(model_dir=model_dir, database_url=url, secret=SECRET)
    fans = [f"u{n}" for n in range(0, 20, 2)]  # music listeners
    with TestClient(create_app(settings)) as c:
        item = {
            "item_id": "m-new",
            "title": "Brand new piano piece",
            "kind": "music",
            "genres": ["Music"],
        }
        assert c.post("/api/items", json={"items": [item]}, headers=write).status_code == 200
        for user in fans:
            head = {"X-Visitor-Token": visitor_token(SECRET.encode(), user)}
            body = {"user_id": user, "item_id": "m-new", "event": "like"}
            assert c.post("/api/events", json=body, headers=head).status_code == 201
        head = {"X-Visitor-Token": visitor_token(SECRET.encode(), "u1")}
        body = {"user_id": "u1", "item_id": "f1", "event": "dislike"}
        assert c.post("/api/events", json=body, headers=head).status_code == 201
    set_training_consent(engine, "u18", False)
    return root, url, fans


def test_liked_new_item_is_recommended_by_the_retrained_collaborative_model(served):
    root, url, _fans = served
    runner = CliRunner()
    out = root / "ease-db"
    res = runner.invoke(
        cli,
        [
            "train",
            "--from-db",
            "--database-url",
            url,
            "--model",
            "ease",
            "--no-media",
            "--register",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "registered as ease-" in res.output
    record = json.loads((out / "training_data.json").read_text())
    assert record["events_read"] == 10 and record["pairs_from_events"] == 9  # u18 opted out
    assert record["event_watermark"] >= 10
    model = Recommender.load(out)
    listeners = [f"u{n}" for n in range(20, 40, 2)]  # music listeners who never saw it
    recs = model.recommend(listeners, 5)
    hits = sum("m-new" in items for items in recs.items)
    assert hits >= 8, recs.items  # the collaborative signal of the likes
    # the same database without its events (a window that holds none): EASE never shows it
    data = training_from_db(get_engine(url), EventPolicy(window_days=1e-9))
    assert data.positives_added == 0
    blind = create_model("ease").fit(TrainData.from_dataset(data.dataset))
    assert not any("m-new" in items for items in blind.recommend(listeners, 5).items)


def test_opted_out_and_negative_pairs_stay_out_of_training(served):
    _, url, _ = served
    data = training_from_db(get_engine(url))
    inter = data.dataset.interactions
    pairs = set(zip(inter.user_id, inter.item_id, strict=False))
    assert ("u18", "m-new") not in pairs and not (inter.user_id == "u18").any()
    assert ("u0", "m-new") in pairs
    assert data.negatives == 1 and ("u1", "f1") not in pairs
    new = inter[inter.item_id == "m-new"]
    assert np.all(new.weight == 1.0) and np.all(new.event == "feedback")


def test_from_db_and_a_folder_are_one_or_the_other(served, tmp_path):
    root, _url, _ = served
    res = CliRunner().invoke(cli, ["train", str(root), "--from-db", "--out", str(tmp_path / "m")])
    assert res.exit_code == 2 and "one of the two" in res.output
    res = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "m")])
    assert res.exit_code == 2
