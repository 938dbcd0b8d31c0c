"""The real ``avrec`` CLI in subprocesses: a user's mistake ends with one line ``error: ...`` on
stderr and exit status 2, never a traceback (unless ``--debug``); ``keys list|revoke`` and
``users delete`` do what they say."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.service_fixtures import build


def avrec(*args: str, home: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "AVREC_DATABASE_URL"}
    environ.update(AVREC_HOME=str(home), **(env or {}))
    return subprocess.run(
        [sys.executable, "-c", "from avrec.cli import main; main()", *args],
        check=False,
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
    )


def assert_user_error(res: subprocess.CompletedProcess, *words: str) -> None:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr and len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    for name, items, inter in (
        ("headers", "item_id,title\n", "user_id,item_id,timestamp\n"),
        ("one-item", "item_id,title\ni1,One\n", "user_id,item_id,timestamp\n"),
        ("no-events", "item_id,title\ni1,One\ni2,Two\n", "user_id,item_id,timestamp\n"),
        ("tiny", "item_id,title\ni1,One\ni2,Two\n", "user_id,item_id,timestamp\nu1,i1,1\n"),
    ):
        (root / name).mkdir()
        (root / name / "items.csv").write_text(items)
        (root / name / "interactions.csv").write_text(inter)
    (root / "requests.jsonl").write_text('{"history": ["m0"]}\n')
    (root / "service").mkdir()
    model_dir, url, _ = build(root / "service")
    return root, model_dir, url


CASES = [
    (["train", "{root}/headers", "--out", "{root}/m"], ["cannot train", "items.csv"]),
    (["train", "{root}/one-item", "--out", "{root}/m"], ["cannot train", "1 item", "at least 2"]),
    (["train", "{root}/no-events", "--out", "{root}/m"], ["no interactions", "interactions.csv"]),
    (["train", "{root}/nowhere", "--out", "{root}/m"], ["nowhere"]),
    (
        ["train", "{root}/no-events", "--out", "{root}/m", "--config", "{root}/none.json"],
        ["--config", "none.json", "no such file"],
    ),
    (["train", "{root}/no-events", "--out", "{root}/m", "--model", "nope"], ["unknown model"]),
    (
        ["recommend", "{model}", "--input", "{root}", "--output", "{root}/o.jsonl"],
        ["--input", "is a folder"],
    ),
    (
        ["recommend", "{model}", "--input", "{root}/missing.jsonl", "--output", "{root}/o.jsonl"],
        ["--input", "no such file"],
    ),
    (
        ["recommend", "{root}", "--input", "{root}/requests.jsonl", "--output", "{root}/o.jsonl"],
        ["not a saved avrec model"],
    ),
    (
        [
            "recommend",
            "{model}",
            "--input",
            "{root}/requests.jsonl",
            "--output",
            "{root}/no/o.jsonl",
        ],
        ["--output", "does not exist"],
    ),
    (
        ["recommend", "{model}", "--input", "{root}/requests.jsonl", "--output", "{root}"],
        ["--output", "is a folder"],
    ),
    (["keys", "create", "x", "--scope", "root", "--database-url", "{url}"], ["--scope", "root"]),
    (["keys", "revoke", "nobody", "--database-url", "{url}"], ["no API key named 'nobody'"]),
    (["stats", "--database-url", "nonsense://x"], ["database URL"]),
    (["describe", "x", "--database-url", "sqlite:///{root}/no/such/dir.db"], ["database"]),
    (
        ["db", "upgrade", "--revision", "bogus", "--database-url", "sqlite:///{root}/a.db"],
        ["bogus"],
    ),
    (["evaluate", "{root}/headers"], ["cannot evaluate"]),
    (
        ["evaluate", "{root}/tiny", "--no-text-features", "--report", "{root}/r"],
        ["msr protocol leaves no training interactions"],
    ),
    (["evaluate", "{root}/no-events", "--k", "0"], ["--k"]),
    (["encode", "--modalities", "smell", "--database-url", "{url}"], ["smell"]),
    (["serve", "--model-dir", "{root}/nowhere"], ["not a saved avrec model"]),
    (["users", "delete", "nobody", "--database-url", "{url}"], ["no trace of user 'nobody'"]),
    (
        [
            "recommend",
            "{model}",
            "--input",
            "{root}/requests.jsonl",
            "--output",
            "{root}/o.jsonl",
            "--k",
            "0",
        ],
        ["--k", "greater than or equal to 1"],
    ),
    (["serve", "--port", "99999"], ["--port"]),
    (["nosuch"], ["No such command", "avrec --help"]),
    (["train"], ["Missing option", "--out", "avrec train --help"]),
    (
        ["users", "delete", "u1", "--database-url", "{url}", "--model-dir", "{root}"],
        ["not a saved avrec model"],
    ),
]


@pytest.mark.parametrize(
    ("args", "words"), CASES, ids=[" ".join(c[0][:2]) + f"-{n}" for n, c in enumerate(CASES)]
)
def test_user_mistakes_are_one_line(files, tmp_path, args, words):
    root, model_dir, url = files
    res = avrec(*[a.format(root=root, model=model_dir, url=url) for a in args], home=tmp_path)
    assert_user_error(res, *words)
    assert not (root / "m").exists()  # train refused before writing anything


def test_debug_shows_the_traceback(files, tmp_path):
    _, _, url = files
    res = avrec(
        "--debug", "keys", "create", "x", "--scope", "root", "--database-url", url, home=tmp_path
    )
    assert res.returncode != 0 and "Traceback" in res.stderr


def test_keys_list_and_revoke(files, tmp_path):
    from fastapi.testclient import TestClient

    from avrec.service.app import create_app
    from avrec.service.settings import ServiceSettings

    _, model_dir, url = files
    made = avrec(
        "keys", "create", "ci-bot", "--scope", "write", "--database-url", url, home=tmp_path
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    listed = avrec("keys", "list", "--database-url", url, home=tmp_path)
    line = next(x for x in listed.stdout.splitlines() if x.startswith("ci-bot"))
    assert "write" in line and line.rstrip().endswith("never")
    assert (
        key not in listed.stdout and hashlib.sha256(key.encode()).hexdigest() not in listed.stdout
    )
    app = create_app(ServiceSettings(model_dir=model_dir, database_url=url, secret="k"))
    with TestClient(app) as c:
        body = {"user_id": "key-user", "item_id": "m0", "event": "like"}
        assert c.post("/api/events", json=body, headers={"X-API-Key": key}).status_code == 201
        used = avrec("keys", "list", "--database-url", url, home=tmp_path).stdout
        assert (
            not next(x for x in used.splitlines() if x.startswith("ci-bot"))
            .rstrip()
            .endswith("never")
        )
        gone = avrec("keys", "revoke", "ci-bot", "--database-url", url, home=tmp_path)
        assert gone.returncode == 0 and "revoked 1" in gone.stdout
        assert c.post("/api/events", json=body, headers={"X-API-Key": key}).status_code == 401
    assert "ci-bot" not in avrec("keys", "list", "--database-url", url, home=tmp_path).stdout


def test_users_delete_everywhere(files, tmp_path):
    import json

    from sqlalchemy import select

    from avrec.storage import tables as t
    from avrec.storage.db import get_engine

    _, model_dir, url = files
    reports = tmp_path / "report"
    reports.mkdir()
    (reports / "per_user.csv").write_text("user_id,ndcg@10\nu5,0.5\nu6,0.25\n")
    res = avrec(
        "users",
        "delete",
        "u5",
        "--database-url",
        url,
        "--model-dir",
        str(model_dir),
        "--reports",
        str(reports),
        home=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert "7 interactions" in res.stdout
    assert "u5" not in json.loads((model_dir / "users.json").read_text())
    assert (reports / "per_user.csv").read_text() == "user_id,ndcg@10\nu6,0.25\n"
    with get_engine(url).connect() as conn:
        assert (
            conn.execute(
                select(t.interactions.c.id).where(t.interactions.c.user_id == "u5")
            ).first()
            is None
        )
    assert b"u5m" not in Path(get_engine(url).url.database).read_bytes()  # (user, item) keys gone
