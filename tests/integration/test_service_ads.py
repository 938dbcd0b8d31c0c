"""Ads in the HTTP API and the CLI, on the service tests' real catalog (calm music and action
films) and trained hybrid: POST /api/ads/select (ranking, brand safety, reasons), ad events
through POST /api/events (impressions count against the frequency cap, a click costs the bid
and needs an impression), clear 4xx answers for bad input, no ad catalog -> 409; ``avrec ads
select`` / ``check`` with caps across a batch and one-line errors."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from avrec.cli import app as cli
from avrec.service.app import create_app
from avrec.service.security import visitor_token
from avrec.service.settings import ServiceSettings
from avrec.storage import tables as t
from avrec.storage.db import get_engine
from avrec.storage.keys import create_key
from tests.integration.service_fixtures import build

SECRET = "ads"
ADS = """ad_id,advertiser,text,item_id,kinds,bid,daily_budget,frequency_cap,exclude,end
piano,Keys Inc,Calm piano nocturne for quiet evenings,m20,,1.0,100,1,,
chase,Fast Cars,Car chase through the city,f1,,1.0,100,3,calm,
headphones,Sound Co,Quiet headphones for calm music,,music,0.8,100,2,,
late,Gone Ltd,An ad whose flight is over,,,5.0,100,2,,2001-01-01
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("ads")
    model_dir, url, _ = build(root)
    ads_file = root / "ads.csv"
    ads_file.write_text(ADS)
    settings = ServiceSettings(
        model_dir=model_dir,
        database_url=url,
        secret=SECRET,
        ads_file=ads_file,
        ads_pacing=False,  # pacing follows the wall clock; test_ads_pacing.py sets the time
    )
    engine = get_engine(url)
    keys = {s: create_key(engine, s, [s]) for s in ("read", "write")}
    with TestClient(create_app(settings)) as c:
        yield c, keys, engine, model_dir, ads_file


def head(user: str) -> dict:
    return {"X-Visitor-Token": visitor_token(SECRET.encode(), user)}


def choose(c, user="u0", context="m4", slots=4, status=200):
    res = c.post(
        "/api/ads/select",
        json={"user_id": user, "context_item_id": context, "slots": slots},
        headers=head(user),
    )
    assert res.status_code == status, res.text
    return res.json()


def test_select_ranks_eligible_ads_with_reasons(served):
    c, *_ = served
    got = choose(c, "u0", "m4")  # u0 listens to music; m4 is calm music
    ids = [a["ad_id"] for a in got["ads"]]
    assert set(ids) == {"piano", "headphones"}
    assert got["excluded"] == {"brand_safety": 1, "flight": 1}  # chase: never next to calm
    assert ids[0] == "piano"  # the music fan's kind of item, next to calm music
    for ad in got["ads"]:
        assert ad["expected_value"] == pytest.approx(ad["p_engage"] * ad["bid"])
        assert ad["reasons"]
    values = [a["expected_value"] for a in got["ads"]]
    assert values == sorted(values, reverse=True)
    film = choose(c, "u1", "f3")  # a film fan next to an action film: the car chase may run
    assert "chase" in [a["ad_id"] for a in film["ads"]]
    assert "headphones" not in [a["ad_id"] for a in film["ads"]]  # targets music only
    assert film["excluded"]["targeting"] == 1


def test_impressions_cap_and_clicks_cost_the_bid(served):
    c, keys, engine, *_ = served
    user = "u2"
    event = {"user_id": user, "item_id": "m4", "ad_id": "piano"}
    res = c.post("/api/events", json={**event, "event": "click"}, headers=head(user))
    assert res.status_code == 409 and "impression" in res.text  # no impression yet
    res = c.post("/api/events", json={**event, "event": "impression"}, headers=head(user))
    assert res.status_code == 201, res.text
    assert res.json()["polarity"] == 0
    got = choose(c, user, "m4")
    assert "piano" not in [a["ad_id"] for a in got["ads"]]  # cap 1 reached
    assert got["excluded"].get("frequency_cap") == 1
    res = c.post(
        "/api/events",
        json={**event, "event": "click", "request_id": "r1"},
        headers={"X-API-Key": keys["write"]},
    )
    assert res.status_code == 201, res.text
    again = c.post(
        "/api/events",
        json={**event, "event": "click", "request_id": "r1"},
        headers={"X-API-Key": keys["write"]},
    )
    assert again.status_code == 200 and again.json()["replayed"] is True
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.ad_events.c.event, t.ad_events.c.cost).where(t.ad_events.c.user_id == user)
        ).all()
        feedback = conn.execute(
            select(t.feedback_events.c.id).where(t.feedback_events.c.user_id == user)
        ).all()
    assert sorted(rows) == [("click", 1.0), ("impression", 0.0)]
    assert feedback == []  # ad events are not feedback on the video
    res = c.post("/api/events", json={**event, "event": "click"}, headers=head(user))
    assert res.status_code == 409  # one click per impression


def test_select_feeds_the_pacing_demand(served):
    """Each answered request counts toward the ads' demand for pacing: one person asking twice
    is one person; an ad left out before pacing (brand safety) is not counted; the selector
    shares the service's demand record (kept across model swaps)."""
    c, *_ = served
    book = c.app.state.ads
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    headphones, chase = book.demand.people("headphones", now), book.demand.people("chase", now)
    choose(c, "u5", "m4")
    choose(c, "u5", "m4")
    got = choose(c, "u6", "m4")
    assert "headphones" in [a["ad_id"] for a in got["ads"]]
    eligible, reached = book.demand.people("headphones", now)
    assert (eligible - headphones[0], reached - headphones[1]) == (2, 2)  # u5, u6; not paced
    assert book.demand.people("chase", now) == chase  # never next to calm music
    assert book.selector(c.app.state.avrec).demand is book.demand


def test_items_added_online_can_be_the_context(served):
    c, keys, *_ = served
    item = {"item_id": "m100", "title": "Soft piano at dawn", "genres": ["Music", "Calm"]}
    res = c.post("/api/items", json={"items": [item]}, headers={"X-API-Key": keys["write"]})
    assert res.status_code in (200, 201), res.text
    got = choose(c, "u0", "m100")
    assert "piano" in [a["ad_id"] for a in got["ads"]]
    assert got["excluded"]["brand_safety"] == 1  # calm: the car chase stays away


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"user_id": "u0", "context_item_id": "nope"}, 404, "unknown item"),
        ({"user_id": "u0", "context_item_id": "m4", "slots": 0}, 422, ""),
        ({"user_id": "u0", "context_item_id": "m4", "slots": "many"}, 422, ""),
        ({"user_id": "u0"}, 422, ""),
        ({"user_id": "u0", "context_item_id": "m4", "colour": 1}, 422, ""),
    ],
)
def test_select_bad_input_is_4xx(served, body, status, says):
    c, *_ = served
    res = c.post("/api/ads/select", json=body, headers=head("u0"))
    assert res.status_code == status, res.text
    assert says in res.text


def test_ad_events_bad_input_and_access(served):
    c, *_ = served
    base = {"user_id": "u0", "item_id": "m4"}
    cases = [
        ({**base, "event": "impression", "ad_id": "nope"}, 404),
        ({**base, "event": "impression"}, 422),  # an impression needs its ad
        ({**base, "event": "like", "ad_id": "piano"}, 422),
        ({**base, "item_id": "nope", "event": "impression", "ad_id": "piano"}, 404),
    ]
    for body, status in cases:
        res = c.post("/api/events", json=body, headers=head("u0"))
        assert res.status_code == status, (body, res.text)
    res = c.post("/api/ads/select", json={"user_id": "u0", "context_item_id": "m4"})
    assert res.status_code == 401
    res = c.post(
        "/api/ads/select", json={"user_id": "u0", "context_item_id": "m4"}, headers=head("u1")
    )
    assert res.status_code == 403


def test_no_ad_catalog_is_409(served, tmp_path):
    _, _, _, model_dir, _ = served
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    settings = ServiceSettings(model_dir=model_dir, database_url=url, secret=SECRET, ads_file=None)
    with TestClient(create_app(settings)) as c:
        res = c.post(
            "/api/ads/select", json={"user_id": "u0", "context_item_id": "m4"}, headers=head("u0")
        )
        assert res.status_code == 409 and "AVREC_ADS" in res.text
        event = {"user_id": "u0", "item_id": "m4", "event": "impression", "ad_id": "piano"}
        assert c.post("/api/events", json=event, headers=head("u0")).status_code == 409


def test_cli_select_keeps_caps_across_the_batch(served, tmp_path):
    *_, model_dir, ads_file = served
    requests = tmp_path / "requests.jsonl"
    lines = [{"user_id": "u0", "context_item_id": "m4", "time": "2026-12-07T10:00:00"}] * 3
    lines.append({"user_id": "new", "context_item_id": "f3", "history": ["f5", "f7"]})
    requests.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "out.jsonl"
    args = ["ads", "select", str(ads_file), str(model_dir), "--requests", str(requests)]
    res = CliRunner().invoke(cli, [*args, "--output", str(out), "--slots", "2"])
    assert res.exit_code == 0, res.output
    answers = [json.loads(x) for x in out.read_text().splitlines()]
    piano = [sum(a["ad_id"] == "piano" for a in ans["ads"]) for ans in answers[:3]]
    assert piano == [1, 0, 0]  # frequency cap 1 per person and day
    assert answers[2]["excluded"]["frequency_cap"] >= 1
    assert "chase" in [a["ad_id"] for a in answers[3]["ads"]]
    ok = CliRunner().invoke(cli, ["ads", "check", str(ads_file)])
    assert ok.exit_code == 0 and "4 ad(s) valid" in ok.output


def test_cli_errors_are_one_line(served, tmp_path):
    *_, model_dir, ads_file = served
    bad = tmp_path / "bad.csv"
    bad.write_text(ads_file.read_text().replace("piano,Keys Inc", "piano,", 1) + "x,y,z\n")
    res = CliRunner().invoke(cli, ["ads", "check", str(bad)])
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0 and "bad.csv:2: advertiser is empty" in res.output
    requests = tmp_path / "r.jsonl"
    requests.write_text('{"user_id": "u0", "context_item_id": "m4"}\n{"user_id": 3}\n')
    args = ["ads", "select", str(ads_file), str(model_dir), "--requests", str(requests)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "r.jsonl:2: user_id must be" in res.output
    res = CliRunner().invoke(cli, [*args[:4], "--requests", str(tmp_path / "absent.jsonl")])
    assert res.exit_code == 2 and "no such file" in res.output


def test_cli_fit_learns_engagement_from_later_watches(tmp_path):
    import numpy as np
    import pandas as pd

    from avrec.ads.engagement import EngagementModel

    # two taste groups; each person's later items come from their own group
    items = [{"item_id": f"i{n}", "title": f"{'Calm' if n % 2 else 'Loud'} {n}"} for n in range(30)]
    pd.DataFrame(items).to_csv(tmp_path / "items.csv", index=False)
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"i{i}", t)
        for u in range(60)
        for t, i in enumerate(rng.choice(range(u % 2, 30, 2), 10, replace=False))
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    frame.to_csv(tmp_path / "interactions.csv", index=False)
    ads = tmp_path / "ads.csv"
    lines = [f"ad{n},S,Trailer {n},i{n},1,10,1" for n in range(0, 30, 3)]
    ads.write_text("ad_id,advertiser,text,item_id,bid,daily_budget,frequency_cap\n")
    ads.write_text(ads.read_text() + "\n".join(lines) + "\n")
    out = tmp_path / "engagement.json"
    res = CliRunner().invoke(cli, ["ads", "fit", str(tmp_path), str(ads), "--out", str(out)])
    assert res.exit_code == 0, res.output
    learned = EngagementModel.load(out)
    assert learned.coef_[0] > 0  # taste predicts the later watch
    plain = tmp_path / "plain.csv"
    plain.write_text("ad_id,advertiser,text,bid,daily_budget,frequency_cap\na,S,t,1,10,1\n")
    res = CliRunner().invoke(cli, ["ads", "fit", str(tmp_path), str(plain), "--out", str(out)])
    assert res.exit_code == 2 and "promote an item" in res.output
