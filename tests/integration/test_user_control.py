"""A person's control over their data (issue #34): the export of everything stored about them
(and nothing of anyone else), their consent to training (API, CLI, and the training data read
from the database), and retention (exact deletion of expired events, by the CLI and on the
service's schedule). The real app (TestClient) and the real CLI entry point, on a small
catalog and model (``service_fixtures.build``)."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, inspect, select, text

from avrec.cli import main
from avrec.service.app import create_app
from avrec.service.security import visitor_token
from avrec.service.settings import ServiceSettings
from avrec.storage import tables as t
from avrec.storage.consent import set_training_consent
from avrec.storage.db import downgrade, get_engine, make_engine, upgrade
from avrec.storage.keys import create_key
from avrec.storage.repository import events_for_training, load_from_db
from avrec.storage.retention import expire_events
from tests.integration.service_fixtures import build

SECRET = "c0ntrol"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("control")
    model_dir, url, _ = build(tmp)
    engine = get_engine(url)
    keys = {scope: create_key(engine, scope, [scope]) for scope in ("read", "write", "admin")}
    return model_dir, url, keys


def own(user: str) -> dict:
    return {"X-Visitor-Token": visitor_token(SECRET.encode(), user)}


def admin(setup) -> dict:
    return {"X-API-Key": setup[2]["admin"]}


@pytest.fixture(scope="module")
def client(setup):
    model_dir, url, _ = setup
    app = create_app(ServiceSettings(model_dir=model_dir, database_url=url, secret=SECRET))
    with TestClient(app) as c:
        for user, item, rid in (
            ("visitor-a", "m0", "a-1"),
            ("visitor-a", "f1", "a-2"),
            ("visitor-b", "m2", "b-1"),
            ("u3", "f5", "u3-1"),  # a trained user with an event too
        ):
            res = c.post(
                "/api/events",
                json={"user_id": user, "item_id": item, "event": "like", "request_id": rid},
                headers=own(user),
            )
            assert res.status_code == 201, res.text
        yield c


def credentials(keys: dict) -> dict:
    cookie = f"avrec_visitor=visitor-a.{own('visitor-a')['X-Visitor-Token']}"
    other = f"avrec_visitor=visitor-b.{own('visitor-b')['X-Visitor-Token']}"
    return {
        "none": ({}, 401),
        "read key": ({"X-API-Key": keys["read"]}, 403),
        "write key": ({"X-API-Key": keys["write"]}, 403),
        "admin key": ({"X-API-Key": keys["admin"]}, 200),
        "unknown key": ({"X-API-Key": "avk_not-a-key"}, 403),
        "own token": (own("visitor-a"), 200),
        "own cookie": ({"Cookie": cookie}, 200),
        "other visitor's token": (own("visitor-b"), 403),
        "other visitor's cookie": ({"Cookie": other}, 403),
        "forged token": ({"X-Visitor-Token": "0123abcd"}, 403),
    }


@pytest.mark.parametrize("route", ["GET export", "GET consent", "POST consent"])
@pytest.mark.parametrize("who", list(credentials({"read": "", "write": "", "admin": ""})))
def test_access_matrix(setup, client, route, who):
    head, expected = credentials(setup[2])[who]
    method, what = route.split()
    url = f"/api/users/visitor-a/{what}"
    res = (
        client.post(url, json={"training": True}, headers=head)
        if method == "POST"
        else client.get(url, headers=head)
    )
    assert res.status_code == expected, (who, res.text)
    if expected == 200:
        assert res.json()["user_id"] == "visitor-a"
        assert res.headers["cache-control"] == "no-store"
    else:
        assert res.json()["detail"]


def test_unknown_user_after_the_credential(setup, client):
    assert client.get("/api/users/nobody/export").status_code == 401  # no probing
    assert client.get("/api/users/nobody/export", headers=admin(setup)).status_code == 404
    res = client.post("/api/users/nobody/consent", json={"training": False}, headers=admin(setup))
    assert res.status_code == 404
    # a visitor's own token proves the ID was issued: it may choose before any event
    res = client.post(
        "/api/users/visitor-new/consent", json={"training": False}, headers=own("visitor-new")
    )
    assert res.status_code == 200 and res.json()["training"] is False


def _strings(value) -> set[str]:
    if isinstance(value, dict):
        return set().union(*map(_strings, value.values())) | set(value) if value else set()
    if isinstance(value, list):
        return set().union(*map(_strings, value)) if value else set()
    return {value} if isinstance(value, str) else set()


def _rows(engine, table, user):
    with engine.connect() as conn:
        q = select(table).where(table.c.user_id == user)
        return [dict(r._mapping) for r in conn.execute(q).all()]


def test_export_of_a_visitor_is_exactly_what_was_stored(setup, client):
    engine = get_engine(setup[1])
    res = client.get("/api/users/visitor-a/export", headers=own("visitor-a"))
    assert res.status_code == 200
    data = res.json()
    stored = _rows(engine, t.feedback_events, "visitor-a")
    assert len(stored) == 2
    assert [e["id"] for e in data["feedback_events"]] == [r["id"] for r in stored]
    for got, row in zip(data["feedback_events"], stored, strict=True):
        assert set(got) == set(t.feedback_events.c.keys())  # every column
        for col in ("user_id", "item_id", "event", "value", "watch_fraction", "request_id"):
            assert got[col] == row[col]
        assert got["body_hash"] == row["body_hash"] and got["created_at"]
    assert data["ids"] == {
        "user_id": "visitor-a",
        "event_ids": [r["id"] for r in stored],
        "request_ids": ["a-1", "a-2"],
    }
    assert data["interactions"] == [] and data["user"] is None
    assert data["consent"]["training"] is True
    profile = client.get("/api/users/visitor-a/profile", headers=own("visitor-a")).json()
    assert data["derived"]["profile"] == {k: v for k, v in profile.items() if k != "user_id"}
    assert data["derived"]["online_state"]["history"] == ["m0", "f1"]
    # nothing of anyone else: no other user's ID, request id or event id
    strings = _strings(data)
    assert not strings & {"visitor-b", "b-1", "u3", "u3-1"}
    others = {r["id"] for r in _rows(engine, t.feedback_events, "visitor-b")}
    assert not others & set(data["ids"]["event_ids"])


def test_export_of_a_trained_user_holds_their_rows_only(setup, client):
    engine = get_engine(setup[1])
    data = client.get("/api/users/u3/export", headers=admin(setup)).json()
    stored = _rows(engine, t.interactions, "u3")
    assert len(stored) == 7 and len(data["interactions"]) == 7
    assert [r["id"] for r in data["interactions"]] == sorted(r["id"] for r in stored)
    by_id = {r["id"]: r for r in stored}
    for got in data["interactions"]:
        assert got == by_id[got["id"]]  # every column, the same values
    assert data["user"]["user_id"] == "u3"
    assert [e["request_id"] for e in data["feedback_events"]] == ["u3-1"]
    assert data["derived"]["online_state"]["history"][-1] == "f5"
    assert len(data["derived"]["online_state"]["history"]) == 8
    others = {f"u{n}" for n in range(40)} - {"u3"} | {"visitor-a", "visitor-b"}
    assert not _strings(data) & others


def test_consent_round_trip_in_the_api(setup, client):
    engine = get_engine(setup[1])
    url = "/api/users/u7/consent"
    assert client.get(url, headers=admin(setup)).json() == {
        "user_id": "u7",
        "training": True,
        "updated_at": None,
    }
    for body in ({"training": "no"}, {"training": 0}, {}, {"training": False, "x": 1}):
        assert client.post(url, json=body, headers=admin(setup)).status_code == 422, body
    res = client.post(url, json={"training": False}, headers=admin(setup))
    assert res.status_code == 200 and res.json()["training"] is False
    assert res.json()["updated_at"]
    assert client.get(url, headers=admin(setup)).json()["training"] is False
    assert "u7" not in set(load_from_db(engine).interactions["user_id"])
    # their own session still adapts: an event is stored and their state moves
    write = {"X-API-Key": setup[2]["write"]}
    res = client.post(
        "/api/events", json={"user_id": "u7", "item_id": "m4", "event": "like"}, headers=write
    )
    assert res.status_code == 201 and res.json()["history_size"] == 8
    assert "u7" not in set(events_for_training(engine)["user_id"])
    recs = client.get("/api/users/u7/recommendations?k=3", headers=admin(setup))
    assert recs.status_code == 200 and len(recs.json()["items"]) == 3
    exported = client.get("/api/users/u7/export", headers=admin(setup)).json()
    assert exported["consent"]["training"] is False
    # opting back in
    res = client.post(url, json={"training": True}, headers=admin(setup))
    assert res.json()["training"] is True
    assert "u7" in set(load_from_db(engine).interactions["user_id"])
    assert "u7" in set(events_for_training(engine)["user_id"])


def test_training_data_from_the_database_leaves_opted_out_users_out(setup, tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'copy.db'}")
    source = load_from_db(get_engine(setup[1]), consented_only=False)
    from avrec.storage.ingest import ingest

    ingest(source, engine)
    with engine.begin() as conn:
        conn.execute(
            insert(t.feedback_events),
            [
                {"user_id": "u2", "item_id": "m0", "event": "like"},
                {"user_id": "u4", "item_id": "m2", "event": "play"},
            ],
        )
    before = load_from_db(engine)
    before_events = events_for_training(engine)
    set_training_consent(engine, "u2", False)
    after = load_from_db(engine)
    assert "u2" in set(before.interactions["user_id"])
    assert "u2" not in set(after.interactions["user_id"])
    kept = before.interactions[before.interactions["user_id"] != "u2"].reset_index(drop=True)
    assert after.interactions.reset_index(drop=True).equals(kept)  # nobody else's rows change
    assert list(before_events["user_id"]) == ["u2", "u4"]
    assert list(events_for_training(engine)["user_id"]) == ["u4"]
    every = load_from_db(engine, consented_only=False)
    assert len(every.interactions) == len(before.interactions)
    set_training_consent(engine, "u2", True)  # an upsert: the latest choice wins
    assert len(load_from_db(engine).interactions) == len(before.interactions)


def test_migrations_0005_0006_up_and_down_on_sqlite(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine, "0004")
    assert not {"user_consent", "impressions"} & set(inspect(engine).get_table_names())
    upgrade(engine, "0005")
    assert "impressions" in inspect(engine).get_table_names()
    assert "user_consent" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert "user_consent" in inspect(engine).get_table_names()
    set_training_consent(engine, "someone", False)
    downgrade(engine, "0004")
    assert not {"user_consent", "impressions"} & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert "user_consent" in inspect(engine).get_table_names()


# ---- retention -----------------------------------------------------------------------------
NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _store_events(engine, created: dict[str, datetime]) -> None:
    naive = {k: v.astimezone(UTC).replace(tzinfo=None) for k, v in created.items()}
    with engine.begin() as conn:
        conn.execute(
            insert(t.feedback_events),
            [
                {
                    "user_id": f"user-{name}",
                    "item_id": "m0",
                    "event": "like",
                    "request_id": name,
                    "created_at": when if engine.dialect.name == "sqlite" else when_aware,
                }
                for (name, when), when_aware in zip(naive.items(), created.values(), strict=True)
            ],
        )


def _left(engine) -> list[str]:
    with engine.connect() as conn:
        c = t.feedback_events.c
        return sorted(conn.execute(select(c.request_id)).scalars())


def test_retention_deletes_exactly_the_expired_events(db_url):
    engine = get_engine(db_url)
    _store_events(
        engine,
        {
            "year-old": NOW - 365 * DAY,
            "31-days": NOW - 31 * DAY,
            "30-days-and-1s": NOW - 30 * DAY - timedelta(seconds=1),
            "30-days-and-1us": NOW - 30 * DAY - timedelta(microseconds=1),
            "30-days": NOW - 30 * DAY,  # the boundary: exactly the age, kept
            "29-days": NOW - 29 * DAY,
            "now": NOW,
        },
    )
    if engine.dialect.name == "sqlite":  # CURRENT_TIMESTAMP's format, without a fraction
        with engine.begin() as conn:
            for rid, when in (
                ("ts-boundary", "2026-11-07 12:00:00"),
                ("ts-old", "2026-11-07 11:59:59"),
            ):
                conn.execute(
                    text(
                        "INSERT INTO feedback_events (user_id, item_id, event, request_id, "
                        "created_at) VALUES ('user-ts', 'm0', 'like', :rid, :when)"
                    ),
                    {"rid": rid, "when": when},
                )
    removed, users = expire_events(engine, 30, now=NOW)
    expired = {"year-old", "31-days", "30-days-and-1s", "30-days-and-1us"}
    if engine.dialect.name == "sqlite":
        expired.add("ts-old")
    assert removed == {"feedback_events": len(expired)}
    assert "30-days" in _left(engine) and not expired & set(_left(engine))
    assert users == {f"user-{n}" for n in expired} - {"user-ts-old"} | (
        {"user-ts"} if engine.dialect.name == "sqlite" else set()
    )
    assert expire_events(engine, 30, now=NOW)[0] == {"feedback_events": 0}  # idempotent


def test_retention_boundary_within_a_second(db_url):
    """A cutoff with a fraction of a second: exact to the microsecond, also against SQLite's
    CURRENT_TIMESTAMP text, which has no fraction."""
    engine = get_engine(db_url)
    now = NOW + timedelta(microseconds=250_000)
    _store_events(
        engine,
        {
            "exact": now - 30 * DAY,
            "1us-older": now - 30 * DAY - timedelta(microseconds=1),
            "1us-younger": now - 30 * DAY + timedelta(microseconds=1),
        },
    )
    expired = {"1us-older"}
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            for rid, when in (
                ("ts-same-second", "2026-11-07 12:00:00"),
                ("ts-next", "2026-11-07 12:00:01"),
            ):
                conn.execute(
                    text(
                        "INSERT INTO feedback_events (user_id, item_id, event, request_id, "
                        "created_at) VALUES ('user-ts', 'm0', 'like', :rid, :when)"
                    ),
                    {"rid": rid, "when": when},
                )
        expired.add("ts-same-second")  # 12:00:00.000 is before the cutoff 12:00:00.250
    removed, _ = expire_events(engine, 30, now=now)
    assert removed == {"feedback_events": len(expired)}
    assert not expired & set(_left(engine))
    assert {"exact", "1us-younger"} <= set(_left(engine))


def cli(monkeypatch, capsys, *args: str, env: dict | None = None) -> tuple[int, str, str]:
    """The real ``avrec`` entry point, in this process."""
    monkeypatch.setattr(sys, "argv", ["avrec", *args])
    monkeypatch.delenv("AVREC_RETENTION_DAYS", raising=False)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exit_:
        main()
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def one_line_error(result: tuple[int, str, str], *words: str) -> None:
    code, _out, err = result
    assert code == 2, result
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_retention_cli(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = get_engine(url)
    now = datetime.now(UTC)
    _store_events(engine, {"old": now - 40 * DAY, "older": now - 90 * DAY, "new": now - DAY})
    db = ("--database-url", url)
    code, out, _ = cli(monkeypatch, capsys, "retention", "apply", *db)
    assert code == 0 and "nothing deleted" in out and len(_left(engine)) == 3
    code, out, _ = cli(monkeypatch, capsys, "retention", "apply", "--older-than", "60", *db)
    assert code == 0 and "feedback_events: 1" in out and _left(engine) == ["new", "old"]
    env = {"AVREC_RETENTION_DAYS": "30"}
    code, out, _ = cli(monkeypatch, capsys, "retention", "apply", *db, env=env)
    assert code == 0 and "feedback_events: 1" in out and _left(engine) == ["new"]
    for bad in ("-1", "0", "nan", "inf"):
        one_line_error(
            cli(monkeypatch, capsys, "retention", "apply", "--older-than", bad, *db), "days"
        )
    one_line_error(cli(monkeypatch, capsys, "retention", "apply", "--older-than", "abc", *db))
    env = {"AVREC_RETENTION_DAYS": "a month"}
    one_line_error(
        cli(monkeypatch, capsys, "retention", "apply", *db, env=env), "AVREC_RETENTION_DAYS"
    )
    assert _left(engine) == ["new"]


def test_the_service_applies_retention_on_its_schedule(setup, tmp_path):
    url = f"sqlite:///{tmp_path / 'sched.db'}"
    engine = get_engine(url)
    now = datetime.now(UTC)
    _store_events(engine, {"stale": now - 10 * DAY, "fresh": now - timedelta(hours=1)})
    with engine.begin() as conn:  # the fresh event's user also had a stale one
        conn.execute(
            insert(t.feedback_events).values(
                user_id="user-fresh",
                item_id="f1",
                event="like",
                created_at=(now - 9 * DAY).replace(tzinfo=None),
            )
        )
    settings = ServiceSettings(
        model_dir=setup[0],
        database_url=url,
        secret=SECRET,
        retention_days=7,
        retention_interval_s=0.05,
    )
    app = create_app(settings)
    with TestClient(app):
        state = app.state.avrec
        deadline = time.monotonic() + 10
        while getattr(app.state, "retention_runs", 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert app.state.retention_runs >= 3  # at start, then every interval
        assert _left(engine) == ["fresh"]
        assert "user-stale" not in state.online  # rebuilt from what is left: nothing
        assert state.user_state("user-fresh").history == ["m0"]  # f1 expired
        task = app.state.retention_task
    assert task.done() and task.cancelled()  # stopped with the service


def test_no_retention_task_unless_configured(setup, tmp_path):
    settings = ServiceSettings(
        model_dir=setup[0], database_url=f"sqlite:///{tmp_path / 'none.db'}", secret=SECRET
    )
    assert settings.retention_days is None
    app = create_app(settings)
    with TestClient(app):
        assert getattr(app.state, "retention_task", None) is None
    with pytest.raises(ValueError, match="retention_days"):
        ServiceSettings(model_dir=setup[0], retention_days=0)


# ---- the CLI: export and consent -------------------------------------------------------------
def test_export_and_consent_cli(setup, client, tmp_path, monkeypatch, capsys):
    url = setup[1]
    db = ("--database-url", url)
    out_file = tmp_path / "u9.json"
    code, _out, err = cli(monkeypatch, capsys, "users", "export", "u9", "-o", str(out_file), *db)
    assert code == 0 and "u9" in err
    assert out_file.stat().st_mode & 0o077 == 0  # readable by its owner only
    data = json.loads(out_file.read_text())
    engine = get_engine(url)
    assert [r["id"] for r in data["interactions"]] == sorted(
        r["id"] for r in _rows(engine, t.interactions, "u9")
    )
    assert data["user"]["user_id"] == "u9" and data["feedback_events"] == []
    assert len(data["derived"]["online_state"]["history"]) == 7
    assert not _strings(data) & ({f"u{n}" for n in range(40)} - {"u9"})
    code, out, _ = cli(monkeypatch, capsys, "users", "export", "visitor-b", *db)
    assert code == 0 and json.loads(out)["ids"]["request_ids"] == ["b-1"]

    code, out, _ = cli(monkeypatch, capsys, "users", "consent", "u9", "--no-training", *db)
    assert code == 0 and "withdrawn" in out
    assert "u9" not in set(load_from_db(engine).interactions["user_id"])
    code, out, _ = cli(monkeypatch, capsys, "users", "consent", "u9", *db)
    assert code == 0 and "withdrawn" in out and "since" in out
    code, out, _ = cli(monkeypatch, capsys, "users", "consent", "u9", "--training", *db)
    assert code == 0 and "given" in out
    assert "u9" in set(load_from_db(engine).interactions["user_id"])

    one_line_error(cli(monkeypatch, capsys, "users", "export", "nobody", *db), "nobody")
    one_line_error(
        cli(monkeypatch, capsys, "users", "consent", "nobody", "--no-training", *db), "nobody"
    )
    one_line_error(cli(monkeypatch, capsys, "users", "export", "u9", "-o", str(tmp_path), *db))
    one_line_error(cli(monkeypatch, capsys, "users", "consent", "u9", "--maybe", *db))
    one_line_error(cli(monkeypatch, capsys, "users", "export", *db))
