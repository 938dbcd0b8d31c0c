"""Storage on both backends: migrations, round trip, bulk ingest, artifacts."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import insert, inspect, select

from avrec.data import Dataset
from avrec.storage import tables as t
from avrec.storage.db import downgrade, get_engine, make_engine, upgrade
from avrec.storage.ingest import ingest, table_counts
from avrec.storage.repository import load_from_db
from tests.conftest import shared_path


def test_migrations_up_and_down(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    names = set(inspect(engine).get_table_names())
    assert {
        "items",
        "users",
        "interactions",
        "feedback_events",
        "artifacts",
        "item_understanding",
        "impressions",
    } <= names
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert "items" in inspect(engine).get_table_names()


def test_round_trip_preserves_values(db_url, synthetic_dataset):
    ds = synthetic_dataset
    ds.interactions.loc[0, "comment"] = "非常好看 — loved it"
    ds.interactions.loc[1, "timestamp"] = float("nan")
    engine = get_engine(db_url)
    ingest(ds, engine)
    back = load_from_db(engine)
    assert back.n_items == ds.n_items and back.n_interactions == ds.n_interactions
    key = ["user_id", "item_id"]
    a = ds.interactions.sort_values(key).reset_index(drop=True)
    b = back.interactions.sort_values(key).reset_index(drop=True)
    pd.testing.assert_series_equal(a["rating"], b["rating"])
    pd.testing.assert_series_equal(a["timestamp"], b["timestamp"])  # NaN survives as NaN
    assert "非常好看 — loved it" in set(b["comment"].dropna())
    items = back.items.set_index("item_id")
    assert items.loc["i1", "genres"] == "Music|Ambient"


def test_changed_rating_is_updated_not_duplicated(db_url, synthetic_dataset):
    engine = get_engine(db_url)
    ingest(synthetic_dataset, engine)
    changed = synthetic_dataset.interactions.copy()
    changed.loc[0, "rating"] = 1.0
    ingest(synthetic_dataset.with_interactions(changed), engine)
    back = load_from_db(engine).interactions
    assert len(back) == len(changed)
    row = changed.iloc[0]
    hit = back[(back.user_id == row.user_id) & (back.item_id == row.item_id)]
    assert hit["rating"].tolist() == [1.0]


def test_interactions_may_reference_items_already_stored(db_url, synthetic_dataset):
    engine = get_engine(db_url)
    ingest(synthetic_dataset, engine)
    more = pd.DataFrame(
        {
            "user_id": ["new-user"],
            "item_id": ["i3"],
            "event": ["like"],
            "timestamp": [2_000_000_000 - 10**9],
        }
    )
    ingest(Dataset(synthetic_dataset.items.iloc[:0], more, name="more"), engine)
    assert table_counts(engine)["interactions"] == synthetic_dataset.n_interactions + 1


def test_artifact_records(db_url):
    engine = get_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            insert(t.artifacts).values(
                kind="model", name="ease", version="1", path="/models/ease", meta={"ndcg@10": 0.41}
            )
        )
    with engine.connect() as conn:
        row = conn.execute(select(t.artifacts)).one()
    assert row.meta == {"ndcg@10": 0.41} and row.created_at is not None


def test_ml100k_bulk_ingest(db_url):
    from avrec.data.loaders import load_dataset

    ds = load_dataset(shared_path("raw", "ml-100k"))
    engine = get_engine(db_url)
    ingest(ds, engine)
    ingest(ds, engine)
    assert table_counts(engine) | {} == {
        **table_counts(engine),
        "items": 1682,
        "users": 943,
        "interactions": 100_000,
    }
    back = load_from_db(engine)
    assert back.users is not None and "occupation" in back.users.columns


def test_delete_user_removes_all_their_rows(db_url, synthetic_dataset):
    from avrec.storage.consent import set_training_consent
    from avrec.storage.users import delete_user

    engine = get_engine(db_url)
    ingest(synthetic_dataset, engine)
    with engine.begin() as conn:
        conn.execute(insert(t.feedback_events).values(user_id="u0", item_id="i0", event="like"))
        ad_event = dict(ad_id="a1", context_item_id="i0", event="impression", day="2026-12-07")
        conn.execute(insert(t.ad_events).values(user_id="u0", **ad_event))
        conn.execute(insert(t.ad_events).values(user_id="u1", **ad_event))
    set_training_consent(engine, "u0", False)  # their consent row is personal data too
    n = int((synthetic_dataset.interactions.user_id == "u0").sum())
    removed = delete_user("u0", engine)
    assert removed == {
        "interactions": n,
        "feedback_events": 1,
        "impressions": 0,
        "ad_events": 1,
        "user_consent": 1,
        "users": 1,
    }
    back = load_from_db(engine)
    assert "u0" not in set(back.interactions.user_id)
    assert back.n_interactions == synthetic_dataset.n_interactions - n
    assert delete_user("u0", engine) == {
        "interactions": 0,
        "feedback_events": 0,
        "impressions": 0,
        "ad_events": 0,
        "user_consent": 0,
        "users": 0,
    }


def test_item_media_rows_with_sizes(db_url):
    from avrec.data.loaders import load_dataset

    ds = load_dataset(shared_path("ready", "ml-100k"))
    engine = get_engine(db_url)
    ingest(ds, engine)
    with engine.connect() as conn:
        rows = conn.execute(select(t.item_media)).mappings().all()
    assert len(rows) == ds.items["image"].notna().sum() == 1618
    assert all(r["kind"] == "image" and r["bytes"] > 0 and r["mime"] == "image/jpeg" for r in rows)
