"""Loaders for the original MovieLens distributions: 100K, 1M and latest/20M/25M."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from avrec.data.dataset import Dataset
from avrec.errors import AvrecError

_YEAR = re.compile(r"\((\d{4})\)\s*$")
ML100K_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


def _year_from_title(titles: pd.Series) -> pd.Series:
    return pd.to_numeric(titles.str.extract(_YEAR, expand=False), errors="coerce")


def _require(path: Path, *names: str) -> None:
    for name in names:
        if not (path / name).is_file():
            raise AvrecError(f"{path / name}: missing file")


def load_ml100k(path: Path) -> Dataset:
    """MovieLens 100K: ``u.data`` (tab-separated), ``u.item`` and ``u.user`` (``|``, Latin-1)."""
    _require(path, "u.data", "u.item")
    ratings = pd.read_csv(
        path / "u.data",
        sep="\t",
        header=None,
        dtype=str,
        names=["user_id", "item_id", "rating", "timestamp"],
    )
    cols = ["item_id", "title", "release", "video_release", "url", *ML100K_GENRES]
    raw = pd.read_csv(
        path / "u.item",
        sep="|",
        header=None,
        names=cols,
        dtype=str,
        encoding="latin-1",
        keep_default_na=False,
    )
    flags = raw[ML100K_GENRES].astype(int).to_numpy().astype(bool)
    genres = [
        "|".join(g for g, on in zip(ML100K_GENRES, row, strict=True) if on and g != "unknown")
        for row in flags
    ]
    items = pd.DataFrame(
        {
            "item_id": raw["item_id"],
            "title": raw["title"],
            "genres": genres,
            "kind": "movie",
            "year": pd.to_datetime(raw["release"], format="%d-%b-%Y", errors="coerce").dt.year,
        }
    )
    users = None
    if (path / "u.user").is_file():
        users = pd.read_csv(
            path / "u.user",
            sep="|",
            header=None,
            dtype=str,
            names=["user_id", "age", "gender", "occupation", "zip"],
        )
    return Dataset(
        items, ratings, users, root=path, name="ml-100k", meta={"source_format": "ml-100k"}
    )


def load_ml1m(path: Path) -> Dataset:
    """MovieLens 1M: ``ratings.dat``, ``movies.dat``, ``users.dat`` with ``::`` separators."""
    _require(path, "ratings.dat", "movies.dat")

    def read(name: str, columns: list[str]) -> pd.DataFrame:
        lines = (path / name).read_bytes().decode("latin-1").splitlines()
        rows = [line.split("::") for line in lines if line]
        bad = next((n for n, r in enumerate(rows) if len(r) != len(columns)), None)
        if bad is not None:
            raise AvrecError(
                f"{path / name}:{bad + 1}: expected {len(columns)} '::'-separated fields"
            )
        return pd.DataFrame(rows, columns=columns)

    ratings = read("ratings.dat", ["user_id", "item_id", "rating", "timestamp"])
    movies = read("movies.dat", ["item_id", "title", "genres"])
    movies["year"] = _year_from_title(movies["title"])
    movies["kind"] = "movie"
    users = None
    if (path / "users.dat").is_file():
        users = read("users.dat", ["user_id", "gender", "age", "occupation", "zip"])
    return Dataset(movies, ratings, users, root=path, name="ml-1m", meta={"source_format": "ml-1m"})


def load_ml_latest(path: Path) -> Dataset:
    """MovieLens latest / 20M / 25M: ``ratings.csv``, ``movies.csv``, optional ``tags.csv`` and
    ``links.csv``. User tags become the items' ``tags`` (unique, most used first)."""
    _require(path, "ratings.csv", "movies.csv")
    ratings = pd.read_csv(path / "ratings.csv", dtype=str).rename(
        columns={"userId": "user_id", "movieId": "item_id"}
    )
    movies = pd.read_csv(path / "movies.csv", dtype=str, keep_default_na=False).rename(
        columns={"movieId": "item_id"}
    )
    movies["genres"] = movies["genres"].replace("(no genres listed)", "")
    movies["year"] = _year_from_title(movies["title"])
    movies["kind"] = "movie"
    meta: dict = {"source_format": "ml-latest", "n_tags": 0}
    if (path / "tags.csv").is_file():
        tags = pd.read_csv(path / "tags.csv", dtype=str, keep_default_na=False)
        meta["n_tags"] = len(tags)
        tags["tag"] = tags["tag"].str.strip().str.replace("|", "/", regex=False)
        tags["key"] = tags["tag"].str.lower()
        tags = tags[tags["key"] != ""]
        counts = tags.groupby(["movieId", "key"]).agg(tag=("tag", "first"), n=("tag", "size"))
        counts = counts.reset_index().sort_values(["movieId", "n"], ascending=[True, False])
        joined = counts.groupby("movieId")["tag"].agg("|".join)
        movies["tags"] = movies["item_id"].map(joined)
    if (path / "links.csv").is_file():
        links = pd.read_csv(path / "links.csv", dtype=str).set_index("movieId")
        movies["imdb_id"] = movies["item_id"].map(links["imdbId"])
    movies["tags"] = movies.get("tags", pd.Series(np.nan, index=movies.index))
    ds = Dataset(
        movies.drop(columns=[c for c in ["imdb_id"] if c in movies]),
        ratings,
        None,
        root=path,
        name=path.name,
        meta=meta,
    )
    return ds
