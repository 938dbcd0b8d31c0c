"""The in-memory dataset: three pandas frames in the dataset-folder format.

``items``: ``item_id, title, description, genres, tags, kind, year, language, image, video, audio,
comments``
(``genres``/``tags`` are ``|``-separated strings; media paths are relative to ``root``).
``interactions``: ``user_id, item_id, rating, timestamp, weight, event, comment``.
``users`` (optional): ``user_id`` plus any attribute columns.
All IDs are strings. Missing values are NaN / empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ITEM_COLUMNS = [
    "item_id",
    "title",
    "description",
    "genres",
    "tags",
    "kind",
    "year",
    "language",
    "image",
    "video",
    "audio",
    "comments",
]
ITEM_REQUIRED = ["item_id"]
ITEM_TEXT_COLUMNS = ["title", "description", "genres", "tags", "kind", "language", "comments"]
MEDIA_COLUMNS = ["image", "video", "audio"]
INTERACTION_COLUMNS = ["user_id", "item_id", "rating", "timestamp", "weight", "event", "comment"]
INTERACTION_REQUIRED = ["user_id", "item_id"]
EVENT_KINDS = (
    "rating",
    "play",
    "view",
    "like",
    "dislike",
    "skip",
    "click",
    "purchase",
    "interaction",
)


def split_multi(value: object) -> list[str]:
    """``'a|b|c'`` -> ``['a', 'b', 'c']``; NaN/empty -> ``[]``."""
    if not isinstance(value, str) or not value:
        return []
    return [v.strip() for v in value.split("|") if v.strip()]


def empty_items() -> pd.DataFrame:
    return normalize_items(pd.DataFrame({c: [] for c in ITEM_COLUMNS}))


def empty_interactions() -> pd.DataFrame:
    return normalize_interactions(pd.DataFrame({c: [] for c in INTERACTION_COLUMNS}))


def _as_id(series: pd.Series) -> pd.Series:
    if (
        series.dtype == object
        and len(series)
        and all(isinstance(v, str) for v in series.iloc[:1000])
        and pd.api.types.infer_dtype(series, skipna=False) == "string"
    ):
        return series
    return series.astype(object).map(lambda v: v if isinstance(v, str) else str(v))


def normalize_items(items: pd.DataFrame) -> pd.DataFrame:
    """Add missing optional columns and fix dtypes (IDs as str, year as float)."""
    out = items.copy()
    for col in ITEM_COLUMNS:
        if col not in out.columns:
            out[col] = np.nan
    out["item_id"] = _as_id(out["item_id"])
    out["year"] = pd.to_numeric(out["year"], errors="coerce").astype(float)
    for col in ITEM_TEXT_COLUMNS + MEDIA_COLUMNS:
        out[col] = out[col].astype(object).where(out[col].notna(), None)
        out[col] = out[col].map(lambda v: None if v is None or v == "" else str(v))
    extra = [c for c in out.columns if c not in ITEM_COLUMNS]
    return out[ITEM_COLUMNS + extra].reset_index(drop=True)


def normalize_interactions(inter: pd.DataFrame) -> pd.DataFrame:
    """Add missing optional columns and fix dtypes."""
    out = inter.copy()
    for col in INTERACTION_COLUMNS:
        if col not in out.columns:
            out[col] = np.nan
    out["user_id"] = _as_id(out["user_id"])
    out["item_id"] = _as_id(out["item_id"])
    out["rating"] = pd.to_numeric(out["rating"], errors="coerce").astype(float)
    out["weight"] = pd.to_numeric(out["weight"], errors="coerce").astype(float)
    out["timestamp"] = pd.to_numeric(out["timestamp"], errors="coerce").astype(float)
    event = out["event"].astype(object)
    out["event"] = event.where(event.notna() & (event != ""), "interaction").map(str)
    if out["rating"].notna().any():
        out.loc[out["rating"].notna() & (out["event"] == "interaction"), "event"] = "rating"
    comment = out["comment"].astype(object)
    out["comment"] = comment.where(comment.notna() & (comment != ""), None)
    extra = [c for c in out.columns if c not in INTERACTION_COLUMNS]
    return out[INTERACTION_COLUMNS + extra].reset_index(drop=True)


@dataclass
class Dataset:
    """A catalog, its interactions and (optionally) users, in the dataset-folder format."""

    items: pd.DataFrame
    interactions: pd.DataFrame
    users: pd.DataFrame | None = None
    root: Path | None = None
    name: str = "dataset"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.items = normalize_items(self.items)
        self.interactions = normalize_interactions(self.interactions)
        if self.users is not None:
            users = self.users.copy()
            users["user_id"] = _as_id(users["user_id"])
            self.users = users.reset_index(drop=True)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_users(self) -> int:
        if self.users is not None:
            return len(self.users)
        return int(self.interactions["user_id"].nunique())

    @property
    def n_interactions(self) -> int:
        return len(self.interactions)

    def user_ids(self) -> list[str]:
        if self.users is not None:
            return list(self.users["user_id"])
        return sorted(self.interactions["user_id"].unique().tolist())

    def media_path(self, relative: str | None) -> Path | None:
        """Absolute path of a media file named in ``items`` (validated at load time)."""
        if not relative or self.root is None:
            return None
        return (self.root / relative).resolve()

    def with_interactions(self, interactions: pd.DataFrame) -> Dataset:
        """A copy sharing the catalog, with other interactions (e.g. a training split)."""
        return Dataset(self.items, interactions, self.users, self.root, self.name, dict(self.meta))

    def summary(self) -> dict:
        return {
            "name": self.name,
            "items": self.n_items,
            "users": self.n_users,
            "interactions": self.n_interactions,
        }
