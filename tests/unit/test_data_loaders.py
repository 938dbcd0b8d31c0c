"""Loaders: original MovieLens layouts (known counts), the dataset-folder format in CSV, JSONL
and Parquet, and format detection."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from avrec.data.loaders import detect_format, load_dataset
from avrec.errors import AvrecError, ValidationError
from tests.conftest import shared_path


def test_ml100k_raw_counts():
    ds = load_dataset(shared_path("raw", "ml-100k"))
    assert ds.meta["source_format"] == "ml-100k"
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (100_000, 943, 1_682)
    toy = ds.items.set_index("item_id").loc["1"]
    assert toy["title"] == "Toy Story (1995)" and "Animation" in toy["genres"]
    assert set(ds.users.columns) >= {"user_id", "age", "gender", "occupation"}


def test_ml_latest_small_raw_counts():
    ds = load_dataset(shared_path("raw", "ml-latest-small"))
    assert ds.meta["source_format"] == "ml-latest"
    assert (ds.n_interactions, ds.n_users, ds.n_items, ds.meta["n_tags"]) == (
        100_836,
        610,
        9_742,
        3_683,
    )
    assert ds.items.set_index("item_id").loc["1", "year"] == 1995


def test_ready_folders_load():
    ds = load_dataset(shared_path("ready", "ml-100k"))
    assert (ds.n_interactions, ds.n_items) == (100_000, 1_682)
    assert ds.media_path(ds.items["image"].dropna().iloc[0]).is_file()
    micro = load_dataset(shared_path("ready", "microlens-sample"))
    assert micro.n_items == 3 and micro.n_interactions == 0
    assert all(micro.media_path(v).is_file() for v in micro.items["video"])


def test_demo_data_is_shipped():
    from importlib.resources import files

    demo = files("avrec") / "demo_data" / "ml-latest-small"
    ds = load_dataset(demo)
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (100_836, 610, 9_742)
    assert (demo / "README.txt").is_file()


def test_ml1m_layout(tmp_path):
    (tmp_path / "ratings.dat").write_text(
        "1::10::5::978300760\n1::20::3::978302109\n2::10::4::978301968\n"
    )
    (tmp_path / "movies.dat").write_bytes(
        "10::Amélie (2001)::Comedy|Romance\n20::Heat (1995)::Action\n".encode("latin-1")
    )
    (tmp_path / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    assert detect_format(tmp_path) == "ml-1m"
    ds = load_dataset(tmp_path)
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (3, 2, 2)
    assert ds.items.set_index("item_id").loc["10", "title"] == "Amélie (2001)"
    assert ds.items.set_index("item_id").loc["10", "year"] == 2001


def test_ml1m_bad_line(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::10::5::978300760\n1::20::3\n")
    (tmp_path / "movies.dat").write_text("10::A (2001)::Comedy\n")
    with pytest.raises(AvrecError, match=r"ratings.dat:2: expected 4"):
        load_dataset(tmp_path)


def _write_formats(tmp_path, items: pd.DataFrame, inter: pd.DataFrame):
    csv_dir, jsonl_dir, pq_dir = (tmp_path / n for n in ("csv", "jsonl", "parquet"))
    for d in (csv_dir, jsonl_dir, pq_dir):
        d.mkdir()
    items.to_csv(csv_dir / "items.csv", index=False)
    inter.to_csv(csv_dir / "interactions.csv", index=False)
    for name, frame in (("items", items), ("interactions", inter)):
        with open(jsonl_dir / f"{name}.jsonl", "w") as f:
            f.writelines(
                json.dumps(
                    {k: v for k, v in rec.items() if not (isinstance(v, float) and math.isnan(v))}
                )
                + "\n"
                for rec in frame.to_dict("records")
            )
        frame.to_parquet(pq_dir / f"{name}.parquet")
    return csv_dir, jsonl_dir, pq_dir


def test_csv_jsonl_parquet_give_the_same_dataset(tmp_path):
    items = pd.DataFrame(
        {
            "item_id": ["a", "b"],
            "title": ["电影 A", "Film B"],
            "genres": ["Drama|Comedy", "Action"],
            "year": [2001, None],
        }
    )
    inter = pd.DataFrame(
        {
            "user_id": ["u1", "u2"],
            "item_id": ["a", "b"],
            "rating": [4.5, None],
            "timestamp": [1_000_000_000, 1_000_000_001],
        }
    )
    loaded = [load_dataset(d) for d in _write_formats(tmp_path, items, inter)]
    for ds in loaded[1:]:
        pd.testing.assert_frame_equal(ds.items, loaded[0].items)
        pd.testing.assert_frame_equal(ds.interactions, loaded[0].interactions)
    assert loaded[0].items.loc[0, "title"] == "电影 A"


def test_jsonl_bad_line_is_named(tmp_path):
    (tmp_path / "items.jsonl").write_text('{"item_id": "a"}\n{"item_id": \n')
    with pytest.raises(ValidationError, match=r"items.jsonl:2: invalid JSON"):
        load_dataset(tmp_path)


def test_parquet_bad_value_is_named_by_row(tmp_path):
    pd.DataFrame({"item_id": ["a"]}).to_parquet(tmp_path / "items.parquet")
    import pyarrow as pa
    import pyarrow.parquet as pq

    # a real NaN (not a null, which means "missing" and is allowed)
    table = pa.table(
        {
            "user_id": ["u", "u"],
            "item_id": ["a", "a"],
            "rating": pa.array([None, float("nan")], type=pa.float64(), from_pandas=False),
        }
    )
    pq.write_table(table, tmp_path / "interactions.parquet")
    with pytest.raises(
        ValidationError, match=r"interactions.parquet:2 \(column 'rating'\): rating is NaN"
    ):
        load_dataset(tmp_path)


def test_unknown_layout_and_two_item_tables(tmp_path):
    with pytest.raises(AvrecError, match="unrecognised dataset layout"):
        detect_format(tmp_path)
    (tmp_path / "items.csv").write_text("item_id\n1\n")
    (tmp_path / "items.jsonl").write_text('{"item_id": "1"}\n')
    with pytest.raises(ValidationError, match="more than one items table"):
        load_dataset(tmp_path)
