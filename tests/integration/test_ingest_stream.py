"""Streamed ingest (storage.ingest.ingest_folder): chunks of two rows leave the database as
the whole-dataset ingest does, repeats across chunks included; a bad row in a later chunk
rolls everything back and is reported with its line."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select

from avrec.data.loaders import load_dataset
from avrec.errors import ValidationError
from avrec.storage import tables as t
from avrec.storage.db import get_engine
from avrec.storage.ingest import ingest, ingest_folder, table_counts

ITEMS = "item_id,title\ni0,A\ni1,B\ni2,C\n"
INTER = (
    "user_id,item_id,rating,timestamp,weight,event,comment\n"
    "u1,i0,4,100,,,\n"
    "u2,i1,3,100,2,,nice\n"
    "u1,i0,5,100,,,\n"  # the same key as line 2 in the next chunk: the later values win
    "u3,i2,,,1,play,\n"
    "u2,i1,2,100,0.5,,changed\n"
)


def _folder(root, inter=INTER, users=None):
    root.mkdir()
    (root / "items.csv").write_text(ITEMS)
    (root / "interactions.csv").write_text(inter)
    if users:
        (root / "users.csv").write_text(users)
    return root


def _rows(url: str) -> tuple[list, list]:
    engine = get_engine(url)
    cols = ["user_id", "item_id", "event", "timestamp", "rating", "weight", "comment"]
    with engine.connect() as conn:
        inter = conn.execute(select(*[t.interactions.c[c] for c in cols])).all()
        users = conn.execute(select(t.users.c.user_id, t.users.c.attributes)).all()
    return sorted(map(tuple, inter), key=str), sorted(map(tuple, users), key=str)


def test_streamed_ingest_equals_whole(tmp_path, db_url):
    folder = _folder(tmp_path / "d", users="user_id,age\nu1,30\nu2,\nu3,41\nu4,22\n")
    whole_url = f"sqlite:///{tmp_path / 'whole.db'}"
    whole = ingest(load_dataset(folder), get_engine(whole_url))
    streamed = ingest_folder(folder, get_engine(db_url), chunk_rows=2)
    assert (streamed.items, streamed.users, streamed.interactions) == (3, 4, 5)
    assert (whole.items, whole.users, whole.interactions) == (3, 4, 5)
    assert _rows(db_url) == _rows(whole_url)
    inter, _ = _rows(db_url)
    assert ("u1", "i0", "rating", 100, 5.0, None, None) in inter
    assert ("u2", "i1", "rating", 100, 2.0, 0.5, "changed") in inter
    assert table_counts(get_engine(db_url)) == table_counts(get_engine(whole_url))


def test_bad_later_chunk_rolls_back(tmp_path, db_url):
    bad = INTER + "u4,i9,3,100,,,\nu4,i1,3,-5,,,\n"
    folder = _folder(tmp_path / "d", inter=bad)
    with pytest.raises(ValidationError) as err:
        ingest_folder(folder, get_engine(db_url), chunk_rows=2)
    where = [(p.line, p.column) for p in err.value.problems]
    assert where == [(7, "item_id"), (8, "timestamp")]
    counts = table_counts(get_engine(db_url))
    assert counts["items"] == 0 and counts["interactions"] == 0 and counts["users"] == 0


def test_dry_run_and_no_interactions(tmp_path, db_url):
    folder = _folder(tmp_path / "d")
    report = ingest_folder(folder, get_engine(db_url), chunk_rows=2, dry_run=True)
    assert report.dry_run and report.interactions == 5
    assert table_counts(get_engine(db_url))["interactions"] == 0
    (folder / "interactions.csv").unlink()
    report = ingest_folder(folder, get_engine(db_url))
    assert (report.items, report.interactions) == (3, 0)
    assert pd.Series(_rows(db_url)[0]).empty


def test_cli_chunk_rows_and_env(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from avrec.cli import app

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    folder = _folder(tmp_path / "d", inter=INTER + "u4,i1,3,100,,bogus,\n")
    result = CliRunner().invoke(
        app, ["ingest", str(folder), "--database-url", url, "--chunk-rows", "2"]
    )
    assert result.exit_code == 2
    assert "interactions.csv:7 (column 'event'): unknown event" in result.output
    (folder / "interactions.csv").write_text(INTER)
    monkeypatch.setenv("AVREC_CHUNK_ROWS", "two")
    result = CliRunner().invoke(app, ["ingest", str(folder), "--database-url", url])
    assert result.exit_code == 2 and "AVREC_CHUNK_ROWS must be a whole number" in result.output
    monkeypatch.setenv("AVREC_CHUNK_ROWS", "3")
    result = CliRunner().invoke(app, ["ingest", str(folder), "--database-url", url])
    assert result.exit_code == 0 and "ingested 3 items, 3 users, 5 interactions" in result.output
