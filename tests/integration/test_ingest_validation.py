"""Bad input: each kind is reported with file, line and column, exits non-zero, and the
database is unchanged afterwards (ingest is all-or-nothing)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avrec.cli import app
from avrec.storage.db import get_engine
from avrec.storage.ingest import table_counts

ITEMS = (
    "item_id,title,description,genres,tags,kind,year,image\n"
    '1,Calm Piano,"Soft piano, for studying",Music|Ambient,piano,music,2001,img/1.jpg\n'
    "2,Loud Action,Explosions,Action,,movie,1999,\n"
    '3,Quiet Film,"A film\nover two lines",Drama,,movie,2005,\n'
)
INTERACTIONS = (
    "user_id,item_id,rating,timestamp,weight\n"
    "u1,1,4.5,1000000000,\n"
    "u1,2,2,1000000100,\n"
    "u2,3,5,1000000200,1.5\n"
)


def write_dataset(root: Path, items: str = ITEMS, interactions: str = INTERACTIONS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "img").mkdir(exist_ok=True)
    (root / "img" / "1.jpg").write_bytes(b"\xff\xd8\xff\xe0fakejpeg")
    (root / "items.csv").write_text(items, encoding="utf-8")
    (root / "interactions.csv").write_text(interactions, encoding="utf-8")
    return root


def run(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def seeded(tmp_path, db_url):
    """A database holding the good dataset, and the counts it has."""
    good = write_dataset(tmp_path / "good")
    result = run("ingest", str(good), "--database-url", db_url)
    assert result.exit_code == 0, result.output
    return db_url, table_counts(get_engine(db_url))


def test_good_dataset_ingests_and_reingest_is_idempotent(seeded, tmp_path):
    db_url, counts = seeded
    assert counts["items"] == 3 and counts["interactions"] == 3 and counts["users"] == 2
    result = run("ingest", str(tmp_path / "good"), "--database-url", db_url)
    assert result.exit_code == 0, result.output
    assert table_counts(get_engine(db_url)) == counts


def test_dry_run_writes_nothing(tmp_path, db_url):
    good = write_dataset(tmp_path / "good")
    result = run("ingest", str(good), "--dry-run", "--database-url", db_url)
    assert result.exit_code == 0 and "dry run" in result.output
    assert table_counts(get_engine(db_url))["interactions"] == 0


BAD_ITEMS = {
    "missing column": (
        "title,year\nA,2000\n",
        "items.csv:1 (column 'item_id'): missing required column",
    ),
    "extra column": (
        "item_id,title,colour\n1,A,red\n",
        "items.csv:1 (column 'colour'): unknown column",
    ),
    "duplicate id": (
        "item_id,title\n1,A\n2,B\n1,C\n",
        "items.csv:4 (column 'item_id'): duplicate item_id '1' (first on line 2)",
    ),
    "wrong type": (
        "item_id,title,year\n1,A,nineteen\n",
        "items.csv:2 (column 'year'): year is not a number",
    ),
    "ragged row": ("item_id,title\n1,A,extra\n", "items.csv:2: expected 2 fields, found 3"),
    "oversized": (
        "item_id,description\n1," + "x" * 100_001 + "\n",
        "items.csv:2 (column 'description'): field is larger than 100000 bytes",
    ),
    "huge id": (
        "item_id\n" + "i" * 300 + "\n",
        "items.csv:2 (column 'item_id'): field is larger than 256 bytes",
    ),
    "NUL byte": (
        "item_id,title\n1,A\x00B\n",
        "items.csv:2 (column 'title'): field contains a NUL byte",
    ),
    "media missing": (
        "item_id,image\n1,img/none.jpg\n",
        "items.csv:2 (column 'image'): media file 'img/none.jpg' does not exist",
    ),
    "media escapes": (
        "item_id,image\n1,../outside.jpg\n",
        "items.csv:2 (column 'image'): media path '../outside.jpg' escapes the dataset folder",
    ),
    "media absolute": (
        "item_id,image\n1,/etc/passwd\n",
        "items.csv:2 (column 'image'): media path '/etc/passwd' is absolute",
    ),
}

BAD_INTERACTIONS = {
    "unknown item": (
        "user_id,item_id,rating\nu1,99,4\n",
        (
            "interactions.csv:2 (column 'item_id'): interaction names an item that is not in "
            "the catalog"
        ),
    ),
    "NaN rating": (
        "user_id,item_id,rating\nu1,1,4\nu1,2,nan\n",
        "interactions.csv:3 (column 'rating'): rating is NaN",
    ),
    "inf rating": (
        "user_id,item_id,rating\nu1,1,inf\n",
        "interactions.csv:2 (column 'rating'): rating is infinite",
    ),
    "out of range rating": (
        "user_id,item_id,rating\nu1,1,11\n",
        "interactions.csv:2 (column 'rating'): rating is out of range 0-10",
    ),
    "text rating": (
        "user_id,item_id,rating\nu1,1,good\n",
        "interactions.csv:2 (column 'rating'): rating is not a number",
    ),
    "negative timestamp": (
        "user_id,item_id,timestamp\nu1,1,-5\n",
        "interactions.csv:2 (column 'timestamp'): impossible timestamp: before 1970-01-01",
    ),
    "future timestamp": (
        "user_id,item_id,timestamp\nu1,1,4102444800\n",
        "interactions.csv:2 (column 'timestamp'): impossible timestamp: in the future",
    ),
    "millisecond timestamp": (
        "user_id,item_id,timestamp\nu1,1,1600000000000\n",
        (
            "interactions.csv:2 (column 'timestamp'): impossible timestamp: far in the future "
            "(milliseconds"
        ),
    ),
    "missing user column": (
        "item_id,rating\n1,4\n",
        "interactions.csv:1 (column 'user_id'): missing required column",
    ),
    "empty user": ("user_id,item_id\n,1\n", "interactions.csv:2 (column 'user_id'): empty user_id"),
    "unknown event": (
        "user_id,item_id,event\nu1,1,teleport\n",
        "interactions.csv:2 (column 'event'): unknown event",
    ),
}


def _assert_rejected_and_unchanged(result, expected: str, db_url: str, counts: dict) -> None:
    assert result.exit_code != 0
    assert expected in result.output, result.output
    assert table_counts(get_engine(db_url)) == counts


@pytest.mark.parametrize("case", sorted(BAD_ITEMS))
def test_bad_items_rejected_database_unchanged(case, seeded, tmp_path):
    db_url, counts = seeded
    items, expected = BAD_ITEMS[case]
    bad = write_dataset(tmp_path / "bad", items=items, interactions="user_id,item_id\n")
    (tmp_path / "outside.jpg").write_bytes(b"x")
    _assert_rejected_and_unchanged(
        run("ingest", str(bad), "--database-url", db_url), expected, db_url, counts
    )


@pytest.mark.parametrize("case", sorted(BAD_INTERACTIONS))
def test_bad_interactions_rejected_database_unchanged(case, seeded, tmp_path):
    db_url, counts = seeded
    inter, expected = BAD_INTERACTIONS[case]
    # the good items plus a new one, so a partial write would show in the counts
    bad = write_dataset(
        tmp_path / "bad", items=ITEMS + "4,New,,,,movie,2010,\n", interactions=inter
    )
    _assert_rejected_and_unchanged(
        run("ingest", str(bad), "--database-url", db_url), expected, db_url, counts
    )


def test_non_utf8_bytes_rejected(seeded, tmp_path):
    db_url, counts = seeded
    bad = write_dataset(tmp_path / "bad")
    (bad / "items.csv").write_bytes(b"item_id,title\n1,ok\n2,caf\xe9\n")
    _assert_rejected_and_unchanged(
        run("ingest", str(bad), "--database-url", db_url),
        "items.csv:3: not valid UTF-8: byte 0xe9",
        db_url,
        counts,
    )


def test_symlink_out_of_folder_rejected(seeded, tmp_path):
    db_url, counts = seeded
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"x")
    bad = write_dataset(
        tmp_path / "bad", items="item_id,image\n1,img/link.jpg\n", interactions="user_id,item_id\n"
    )
    os.symlink(secret, bad / "img" / "link.jpg")
    _assert_rejected_and_unchanged(
        run("ingest", str(bad), "--database-url", db_url),
        "escapes the dataset folder",
        db_url,
        counts,
    )


def test_unknown_user_when_users_table_given(seeded, tmp_path):
    db_url, counts = seeded
    bad = write_dataset(tmp_path / "bad")
    (bad / "users.csv").write_text("user_id,age\nu1,30\n")
    _assert_rejected_and_unchanged(
        run("ingest", str(bad), "--database-url", db_url),
        "interactions.csv:4 (column 'user_id'): interaction names a user that is not in users",
        db_url,
        counts,
    )


def test_database_failure_mid_batch_rolls_back(seeded, tmp_path, monkeypatch):
    """A failure after items were written (here: in the interaction upsert) leaves nothing."""
    db_url, counts = seeded
    import avrec.storage.ingest as ingest_mod

    real = ingest_mod.upsert

    def failing(conn, table, frame, **kw):
        if table == "interactions":
            raise RuntimeError("disk full")
        return real(conn, table, frame, **kw)

    monkeypatch.setattr(ingest_mod, "upsert", failing)
    new = write_dataset(tmp_path / "new", items=ITEMS + "4,New,,,,movie,2010,\n")
    from avrec.data.loaders import load_dataset

    with pytest.raises(RuntimeError, match="disk full"):
        ingest_mod.ingest(load_dataset(new), get_engine(db_url))
    assert table_counts(get_engine(db_url)) == counts


def test_many_problems_all_listed(tmp_path, db_url):
    rows = "".join(f"u1,{i},99\n" for i in range(1, 4))
    bad = write_dataset(tmp_path / "bad", interactions="user_id,item_id,rating\n" + rows)
    result = run("ingest", str(bad), "--database-url", db_url)
    assert result.exit_code != 0
    assert "3 problem(s)" in result.output
    for line in (2, 3, 4):
        assert f"interactions.csv:{line} (column 'rating')" in result.output
    shutil.rmtree(bad)
