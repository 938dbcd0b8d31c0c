"""Business rules in the HTTP API: each rule kind on both recommendation routes, the admin
endpoints that replace them without a restart (422 naming the line on a bad document; admin
scope only), and the rules file re-read when it changes."""

from __future__ import annotations

import json
import os

import pytest
from fastapi.testclient import TestClient

from avrec.rerank.rules import cap_violations, compile_rules, parse_rules
from avrec.service import rules as service_rules
from avrec.service.app import create_app
from avrec.service.security import visitor_token
from avrec.service.settings import ServiceSettings
from avrec.storage.db import get_engine
from avrec.storage.keys import create_key
from tests.integration.service_fixtures import build

SECRET = "rules"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("rules")
    model_dir, url, items = build(root, years=True)
    rules_file = root / "rules.json"
    rules_file.write_text(json.dumps({"rules": []}))
    settings = ServiceSettings(
        model_dir=model_dir, database_url=url, secret=SECRET, rules_file=rules_file
    )
    engine = get_engine(url)
    keys = {s: create_key(engine, s, [s]) for s in ("admin", "write")}
    with TestClient(create_app(settings)) as c:
        yield c, keys, rules_file, items


@pytest.fixture
def client(served):
    c, keys, _, _ = served
    yield c
    c.delete("/api/admin/rules", headers={"X-API-Key": keys["admin"]})


def put(served, rules: list[dict], **extra):
    c, keys, _, _ = served
    res = c.put(
        "/api/admin/rules", json={"rules": rules, **extra}, headers={"X-API-Key": keys["admin"]}
    )
    assert res.status_code == 200, res.text
    return res.json()


def listed(c, user="u0", k=8, **params):
    head = {"X-Visitor-Token": visitor_token(SECRET.encode(), user)}
    res = c.get(f"/api/users/{user}/recommendations", params={"k": k, **params}, headers=head)
    assert res.status_code == 200, res.text
    return res.json()["items"]


def anonymous(c, k=6):
    res = c.post("/api/recommendations", json={"history": ["m0", "m2"], "k": k})
    assert res.status_code == 200, res.text
    return res.json()["items"]


def test_filter_and_availability(served, client):
    assert {i["kind"] for i in listed(client)[:6]} == {"music"}  # u0 listens to music
    put(served, [{"name": "films-only", "filter": {"include": {"kind": "movie"}}}])
    assert {i["kind"] for i in listed(client)} == {"movie"}
    assert {i["kind"] for i in anonymous(client)} == {"movie"}
    window = {"match": {"genre": "calm"}, "from": "2000-01-01", "until": "2000-02-01"}
    put(served, [{"name": "old-season", "availability": window}])
    assert {i["kind"] for i in listed(client)} == {"movie"}  # music out of its window


def test_boost_and_pin_are_explained(served, client):
    plain = [i["item_id"] for i in listed(client)]
    put(
        served,
        [
            {"name": "promo", "boost": {"match": {"item": ["m28"]}, "weight": 5}},
            {"name": "feature", "pin": {"item": "f1", "position": 2}},
        ],
    )
    items = listed(client)
    assert [i["item_id"] for i in items[:2]] == ["m28", "f1"] and plain[:2] != ["m28", "f1"]
    assert "boosted by rule 'promo'" in items[0]["explanation"]
    assert "pinned to position 2 by rule 'feature'" in items[1]["explanation"].lower()
    assert [i["item_id"] for i in anonymous(client)[:2]] == ["m28", "f1"]


def test_freshness_and_a_cap_that_holds_for_every_user(served, client):
    put(served, [{"name": "fresh", "freshness": {"field": "year", "half_life": 0.5, "weight": 8}}])
    fresh = listed(client, k=3)  # item n is from 1990 + n: the newest first, film or not
    assert [i["item_id"] for i in fresh[:2]] == ["f29", "m28"]
    assert "boosted by rule 'fresh'" in fresh[0]["explanation"]
    put(served, [{"name": "two-per-kind", "cap": {"field": "kind", "max": 2, "top": 4}}])
    _, _, _, items = served
    compiled = compile_rules(
        parse_rules(
            json.dumps({"rules": [{"name": "c", "cap": {"field": "kind", "max": 2, "top": 4}}]})
        ),
        items,
    )
    index = {i: n for n, i in enumerate(items["item_id"])}
    for u in range(40):
        shown = [index[i["item_id"]] for i in listed(client, f"u{u}")]
        assert len(shown) == 8 and cap_violations(compiled, shown) == [], u
        assert sorted(items["kind"][i] for i in shown[:4]) == ["movie"] * 2 + ["music"] * 2


def test_bad_rules_are_a_422_naming_the_line_and_change_nothing(served, client):
    c, keys, _, _ = served
    before = put(served, [{"name": "films-only", "filter": {"include": {"kind": "movie"}}}])
    body = '{"rules": [\n {"name": "x",\n  "cap": {"field": "kind", "max": 0, "top": 4}}]}'
    head = {"X-API-Key": keys["admin"], "Content-Type": "application/json"}
    res = c.put("/api/admin/rules", content=body, headers=head)
    assert res.status_code == 422
    err = res.json()
    assert err["errors"][0]["loc"] == ["body", "rules", 0, "cap", "max"]
    assert err["errors"][0]["msg"].startswith("line 3: rule 'x': cap.max")
    res = c.put(
        "/api/admin/rules",
        json={"rules": [{"name": "y", "cap": {"field": "directr", "max": 1, "top": 4}}]},
        headers={"X-API-Key": keys["admin"]},
    )
    assert res.status_code == 422 and "no attribute 'directr'" in res.json()["detail"]
    now = c.get("/api/admin/rules", headers={"X-API-Key": keys["admin"]}).json()
    assert now["version"] == before["version"] and now["rules"] == before["rules"]
    assert {i["kind"] for i in listed(client)} == {"movie"}


def test_only_admin_keys_touch_the_rules(served, client):
    c, keys, _, _ = served
    assert c.get("/api/admin/rules").status_code == 401
    rules = {"rules": []}
    assert (
        c.put("/api/admin/rules", json=rules, headers={"X-API-Key": keys["write"]}).status_code
        == 403
    )


def test_the_rules_file_is_reread_when_it_changes(served, client, monkeypatch):
    c, keys, path, _ = served
    monkeypatch.setattr(service_rules, "POLL_S", 0.0)
    admin = {"X-API-Key": keys["admin"]}
    path.write_text(
        json.dumps({"rules": [{"name": "f", "filter": {"exclude": {"kind": "music"}}}]})
    )
    os.utime(path, (1_000, 1_000))
    assert {i["kind"] for i in listed(client)} == {"movie"}  # no restart
    assert c.get("/api/admin/rules", headers=admin).json()["origin"] == "file"
    path.write_text('{"rules": [\n {"name": "f", "filter": {}}]}')  # a bad change: kept
    os.utime(path, (2_000, 2_000))
    assert {i["kind"] for i in listed(client)} == {"movie"}
    state = c.get("/api/admin/rules", headers=admin).json()
    assert state["error"].startswith(f"{path}:2: rule 'f'")
    res = c.post("/api/admin/rules/reload", headers=admin)
    assert res.status_code == 422 and res.json()["errors"][0]["msg"].startswith("line 2: rule 'f'")
    path.write_text(json.dumps({"rules": []}))
    os.utime(path, (3_000, 3_000))
    assert {i["kind"] for i in listed(client)[:6]} == {"music"}


def test_the_index_path_applies_the_same_rules(served, tmp_path):
    c, _, _, _ = served
    model_dir = c.app.state.settings.model_dir
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: films-only\n    filter: {include: {kind: movie}}\n"
        "  - name: feature\n    pin: {item: f29, position: 1}\n"
        "  - name: one-per-title\n    cap: {field: year, max: 1, top: 5}\n"
    )
    settings = ServiceSettings(
        model_dir=model_dir,
        database_url=c.app.state.settings.database_url,
        secret=SECRET,
        retrieval="index",
        rules_file=rules,
    )
    with TestClient(create_app(settings)) as index_client:
        assert index_client.app.state.avrec.use_index
        items = listed(index_client, "u0", k=6)
        assert [i["kind"] for i in items] == ["movie"] * 6 and items[0]["item_id"] == "f29"
        assert "pinned to position 1 by rule 'feature'" in items[0]["explanation"].lower()
