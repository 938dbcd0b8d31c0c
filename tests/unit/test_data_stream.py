"""Streamed interactions (data.stream): chunks of a few rows give the vocabularies and
matrices of the whole-file path, for CSV, JSONL and Parquet, and a bad row in a later chunk
is reported with its own line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from avrec.data.loaders import load_dataset
from avrec.data.stream import iter_table, stream_folder
from avrec.errors import ValidationError
from avrec.models.base import TrainData

ITEMS = pd.DataFrame({"item_id": [f"i{n}" for n in range(6)], "title": list("abcdef")})
# duplicates of a pair across chunks (the larger weight and the later rating win), equal
# timestamps (file order breaks the tie), missing weights, ratings and timestamps, a user
# seen only in the last chunk and ids that sort differently as text than as numbers
ROWS = [
    ("u10", "i0", "4", "100", ""),
    ("u2", "i1", "", "100", "2.5"),
    ("u10", "i2", "3", "", ""),
    ("u2", "i1", "5", "90", "0.5"),
    ("u10", "i0", "2", "100", "3"),
    ("u3", "i3", "1", "120", ""),
    ("u2", "i4", "", "", ""),
    ("u10", "i0", "5", "80", ""),
    ("u9", "i5", "4.5", "130", "1"),
]
COLUMNS = ["user_id", "item_id", "rating", "timestamp", "weight"]


def _folder(tmp_path, rows=ROWS, kind="csv", users=None):
    ITEMS.to_csv(tmp_path / "items.csv", index=False)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if kind == "csv":
        frame.to_csv(tmp_path / "interactions.csv", index=False)
    elif kind == "jsonl":
        frame.to_json(tmp_path / "interactions.jsonl", orient="records", lines=True)
    else:  # Parquet with typed columns, as a user's pipeline would write it
        typed = frame.assign(
            rating=pd.to_numeric(frame["rating"]),
            timestamp=pd.to_numeric(frame["timestamp"]).astype("Int64"),
            weight=pd.to_numeric(frame["weight"]),
        )
        typed.to_parquet(tmp_path / "interactions.parquet", index=False)
    if users is not None:
        pd.DataFrame({"user_id": users}).to_csv(tmp_path / "users.csv", index=False)
    return tmp_path


def _same(a, b) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.data, b.data)


def _check_equal(path, chunk_rows) -> None:
    whole = TrainData.from_dataset(load_dataset(path))
    catalog, streamed = stream_folder(path, chunk_rows=chunk_rows)
    assert len(catalog.interactions) == 0
    assert streamed.user_vocab == whole.user_vocab
    assert streamed.item_vocab == whole.item_vocab
    _same(streamed.matrices.matrix, whole.matrix)
    _same(streamed.matrices.recency, whole.recency)
    assert whole.ratings is not None and streamed.matrices.ratings is not None
    _same(streamed.matrices.ratings, whole.ratings)
    assert streamed.n_interactions == len(ROWS)


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("chunk_rows", [1, 2, 4, 100])
def test_chunks_equal_whole_file(tmp_path, kind, chunk_rows):
    _check_equal(_folder(tmp_path, kind=kind, users=["u9", "u7", "u2", "u3", "u10"]), chunk_rows)


def test_known_answer(tmp_path):
    _, s = stream_folder(_folder(tmp_path), chunk_rows=2)
    assert s.user_vocab.ids.tolist() == ["u10", "u2", "u3", "u9"]  # sorted as text
    m = s.matrices.matrix.toarray()
    assert m[0, 0] == 3.0  # (u10, i0): weights -, 3, - -> the largest, 3
    assert m[1, 1] == 2.5  # (u2, i1): 2.5 then 0.5
    ratings = s.matrices.ratings.toarray()
    assert ratings[0, 0] == 2.0  # u10's i0 ratings at t=100, 100, 80: the later of the ties
    assert ratings[1, 1] == 5.0
    assert s.matrices.recency.toarray()[0].tolist() == [1, 0, 2, 0, 0, 0]


def test_quoted_line_breaks_and_blank_lines(tmp_path):
    """A comment spanning lines across a chunk's end, blank lines, CRLF: same as whole."""
    _folder(tmp_path)
    text = (
        "user_id,item_id,rating,timestamp,comment\r\n"
        'u1,i0,4,100,"first\r\nsecond"\r\n'
        "\r\n"
        'u2,i1,3,101,"a ""quoted"" word"\r\n'
        "u1,i2,5,102,\r\n"
        'u3,i3,1,103,"x\r\n\r\ny"\r\n'
        "u3,i4,2,104,plain\r\n"
    )
    (tmp_path / "interactions.csv").write_bytes(text.encode())
    whole = TrainData.from_dataset(load_dataset(tmp_path))
    for n in (1, 2, 3):
        chunks = list(iter_table(tmp_path / "interactions.csv", n))
        lines = np.concatenate([c.lines for c in chunks]).tolist()
        assert lines == [2, 5, 6, 7, 10]
        comments = pd.concat([c.frame for c in chunks])["comment"].tolist()
        assert comments[0] == "first\r\nsecond" and comments[1] == 'a "quoted" word'
        _, s = stream_folder(tmp_path, chunk_rows=n)
        assert s.user_vocab == whole.user_vocab
        _same(s.matrices.matrix, whole.matrix)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_bad_rows_in_later_chunks_name_their_line(tmp_path, kind):
    rows = [*ROWS, ("u1", "i9", "3", "100", ""), ("u1", "i1", "11", "100", "")]
    _folder(tmp_path, rows=rows, kind=kind)
    with pytest.raises(ValidationError) as whole:
        load_dataset(tmp_path)
    with pytest.raises(ValidationError) as streamed:
        stream_folder(tmp_path, chunk_rows=2)
    assert [str(p) for p in streamed.value.problems] == [str(p) for p in whole.value.problems]
    first = 11 if kind == "csv" else 10  # CSV: the file's line; Parquet: the row
    where = [(p.line, p.column) for p in streamed.value.problems]
    assert where == [(first, "item_id"), (first + 1, "rating")]
    assert "not in the catalog" in streamed.value.problems[0].message


def test_malformed_csv_and_bad_bytes_name_the_line(tmp_path):
    _folder(tmp_path)
    path = tmp_path / "interactions.csv"
    path.write_bytes(b"user_id,item_id\nu1,i0\nu2,i1\nu3,i2,extra\nu4,i3\n")
    with pytest.raises(ValidationError, match=r"interactions.csv:4: expected 2 fields, found 3"):
        stream_folder(tmp_path, chunk_rows=2)
    path.write_bytes(b"user_id,item_id\nu1,i0\nu2,i1\nu3,i2\nu\xff,i3\n")
    with pytest.raises(ValidationError, match=r"interactions.csv:5: not valid UTF-8"):
        stream_folder(tmp_path, chunk_rows=2)


def test_header_only_and_missing_column(tmp_path):
    _folder(tmp_path)
    (tmp_path / "interactions.csv").write_text("user_id,item_id\n")
    _, s = stream_folder(tmp_path, chunk_rows=2)
    assert s.matrices.matrix.nnz == 0 and len(s.user_vocab) == 0
    (tmp_path / "interactions.csv").write_text("user_id,rating\nu1,3\n")
    with pytest.raises(ValidationError, match="missing required column 'item_id'"):
        stream_folder(tmp_path, chunk_rows=1)


def _reference(rows, cols, weights, ratings, times, shape):
    """The pandas formulation the matrices were first built with (groupby max, stable sort by
    time then the last rating per pair, recency by (user, time, file order))."""
    import scipy.sparse as sp

    values = np.where(np.isnan(weights), 1.0, weights).astype(np.float32)
    dedup = pd.DataFrame({"r": rows, "c": cols, "v": values}).groupby(["r", "c"])["v"].max()
    index = dedup.index
    matrix = sp.csr_matrix(
        (dedup.to_numpy(np.float32), (index.get_level_values(0), index.get_level_values(1))),
        shape=shape,
    )
    rated = ~np.isnan(ratings)
    order = np.nan_to_num(times[rated], nan=0.0).argsort(kind="stable")
    r = pd.DataFrame(
        {"r": rows[rated][order], "c": cols[rated][order], "v": ratings[rated][order]}
    ).drop_duplicates(["r", "c"], keep="last")
    rated_matrix = sp.csr_matrix((r["v"].to_numpy(np.float32), (r["r"], r["c"])), shape=shape)
    t = np.nan_to_num(times, nan=-1.0)
    frame = pd.DataFrame({"r": rows, "c": cols, "t": t, "o": np.arange(len(rows))})
    frame = frame.sort_values(["r", "t", "o"]).drop_duplicates(["r", "c"], keep="last")
    rank = frame.groupby("r").cumcount(ascending=False).to_numpy() + 1
    recency = sp.csr_matrix((rank.astype(np.float32), (frame["r"], frame["c"])), shape=shape)
    return matrix, rated_matrix, recency


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matrices_equal_the_pandas_formulation(seed):
    """Many repeats, equal timestamps and missing values: the numpy sorts pick what the
    pandas groupby / drop_duplicates did."""
    from avrec.data.matrix import interaction_matrices

    rng = np.random.default_rng(seed)
    n, shape = 3000, (40, 30)
    rows = rng.integers(0, shape[0], n)
    cols = rng.integers(0, shape[1], n)
    weights = np.where(rng.random(n) < 0.3, np.nan, rng.integers(0, 5, n).astype(float))
    ratings = np.where(rng.random(n) < 0.4, np.nan, rng.integers(1, 11, n) / 2)
    times = np.where(rng.random(n) < 0.2, np.nan, rng.integers(0, 6, n).astype(float))
    built = interaction_matrices(rows, cols, weights, ratings, times, shape)
    for got, want in zip(
        (built.matrix, built.ratings, built.recency),
        _reference(rows, cols, weights, ratings, times, shape),
        strict=True,
    ):
        _same(got, want)
