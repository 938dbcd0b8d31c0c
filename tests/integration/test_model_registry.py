"""Model versions: register, promote, roll back (CLI and library), and a running service that
follows the registry, swapping models under load without a failed request; a rollback gives
back the earlier version's answers exactly, and events posted around the swap are kept."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from avrec.cli import app as cli
from avrec.feedback.training import training_from_db
from avrec.models.base import TrainData
from avrec.models.registry import create_model
from avrec.service.app import create_app
from avrec.service.security import visitor_token
from avrec.service.settings import ServiceSettings
from avrec.storage import registry
from avrec.storage.db import get_engine
from tests.integration.service_fixtures import build

SECRET = "reg"


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """Three saved models of the service's catalog: the fixture's hybrid, EASE and item-kNN."""
    root = tmp_path_factory.mktemp("registry")
    hybrid_dir, url, _ = build(root)
    data = TrainData.from_dataset(training_from_db(get_engine(url)).dataset)
    folders = [hybrid_dir]
    for name in ("ease", "itemknn"):
        create_model(name).fit(data).save(root / name)
        folders.append(root / name)
    return url, folders


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_register_promote_and_roll_back_from_the_cli(versions, tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    ids = []
    for folder in versions[1]:
        res = run("models", "register", folder, "--database-url", url)
        assert res.exit_code == 0, res.output
        ids.append(res.output.strip())
    assert ids[0].startswith("hybrid-") and ids[1].startswith("ease-")
    again = run("models", "register", versions[1][0], "--database-url", url)
    assert again.output.strip() == ids[0]  # registering twice is one version
    for v in ids:
        assert run("models", "promote", v, "--database-url", url).exit_code == 0
    listed = run("models", "list", "--database-url", url).output
    assert f"* {ids[2]}" in listed and len(listed.strip().splitlines()) == 3
    engine = get_engine(url)
    assert registry.rollback(engine).version == ids[1]
    assert registry.rollback(engine).version == ids[0]  # one further back, not a toggle
    res = run("models", "rollback", "--database-url", url)
    assert res.exit_code == 2 and "no earlier promoted version" in res.output
    shown = run("models", "show", ids[1], "--database-url", url)
    assert shown.exit_code == 0 and '"model": "ease"' in shown.output
    assert len(registry.history(engine)) == 5
    bad = run("models", "promote", "ease-000000000000", "--database-url", url)
    assert bad.exit_code == 2 and bad.output.count("\n") == 1


def test_the_service_follows_the_registry_under_load(versions):
    url, folders = versions
    engine = get_engine(url)
    first, second = (registry.register(engine, f).version for f in folders[1:])
    registry.promote(engine, first)
    head = {"X-Visitor-Token": visitor_token(SECRET.encode(), "u0")}
    settings = ServiceSettings(
        model_dir=folders[0],
        database_url=url,
        secret=SECRET,
        follow_registry=True,
        registry_poll_s=0.2,
    )

    def answers(c):  # a fixed request: the same history before and after
        res = c.post("/api/recommendations", json={"history": ["m0", "m2", "f1"], "k": 10})
        assert res.status_code == 200, res.text
        return [(i["item_id"], i["score"]) for i in res.json()["items"]]

    def wait_for(c, version):
        deadline = time.time() + 60
        while c.get("/health").json()["version"] != version:
            assert time.time() < deadline, f"the service did not switch to {version}"
            time.sleep(0.1)

    with TestClient(create_app(settings)) as c:
        assert c.get("/health").json()["version"] == first  # promoted before the start
        before = answers(c)
        failures, served, stop = [], [0], threading.Event()

        def load():
            while not stop.is_set():
                res = c.get("/api/users/u0/recommendations?k=8", headers=head)
                served[0] += 1
                if res.status_code != 200:
                    failures.append(res.status_code)

        workers = [threading.Thread(target=load) for _ in range(3)]
        for w in workers:
            w.start()
        registry.promote(engine, second)
        body = {"user_id": "u0", "item_id": "m28", "event": "like"}
        assert c.post("/api/events", json=body, headers=head).status_code == 201
        wait_for(c, second)
        assert answers(c) != before  # the second version answers now
        stop.set()
        for w in workers:
            w.join()
        assert failures == [] and served[0] > 10
        assert "m28" in c.app.state.avrec.user_state("u0").history  # kept across the swap
        registry.rollback(engine)
        wait_for(c, first)
        assert answers(c) == before  # the earlier version's answers, exactly
