"""Detect a dataset's layout from the files in its folder and load it."""

from __future__ import annotations

from pathlib import Path

from avrec.data.dataset import Dataset
from avrec.errors import AvrecError

FORMATS = ("folder", "ml-100k", "ml-1m", "ml-latest")


def detect_format(path: Path) -> str:
    """Name of the layout of the dataset at ``path`` (see :data:`FORMATS`)."""
    path = Path(path)
    if not path.exists():
        raise AvrecError(f"{path}: no such file or folder")
    if not path.is_dir():
        raise AvrecError(f"{path}: expected a dataset folder")
    names = {p.name for p in path.iterdir()}
    if names & {"items.csv", "items.jsonl", "items.parquet"}:
        return "folder"
    if "u.data" in names:
        return "ml-100k"
    if "ratings.dat" in names:
        return "ml-1m"
    if {"ratings.csv", "movies.csv"} <= names:
        return "ml-latest"
    raise AvrecError(
        f"{path}: unrecognised dataset layout (expected items.csv|jsonl|parquet with "
        "interactions, MovieLens u.data, ratings.dat, or ratings.csv + movies.csv)"
    )


def load_dataset(
    path: str | Path, format: str | None = None, *, validate: bool = True, **options
) -> Dataset:
    """Load (and by default validate) the dataset at ``path``; ``format`` overrides detection."""
    path = Path(path)
    fmt = format or detect_format(path)
    if fmt == "folder":
        from avrec.data.loaders.folder import load_folder

        return load_folder(path, validate=validate, **options)
    if fmt in ("ml-100k", "ml-1m", "ml-latest"):
        from avrec.data.loaders import movielens

        loader = {
            "ml-100k": movielens.load_ml100k,
            "ml-1m": movielens.load_ml1m,
            "ml-latest": movielens.load_ml_latest,
        }[fmt]
        if not path.is_dir():
            raise AvrecError(f"{path}: expected a folder in the {fmt} layout")
        return loader(path)
    raise AvrecError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
