"""The dataset-folder format: ``items``, optional ``interactions`` and ``users`` tables as CSV,
JSONL or Parquet, media paths relative to the folder. Validated before anything is returned."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from avrec.data.dataset import Dataset
from avrec.data.readers import RawTable, find_table, read_table
from avrec.data.validation import (
    Collector,
    Rules,
    validate_interactions,
    validate_items,
    validate_users,
)
from avrec.errors import AvrecError


def strip_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell stripped of surrounding spaces; empty cells missing (None)."""
    out = frame.copy()
    for col in out.columns:
        out[col] = out[col].astype(str).str.strip().replace("", None)
    return out


def load_folder(
    path: Path,
    *,
    validate: bool = True,
    rules: Rules | None = None,
    interactions: bool = True,
) -> Dataset:
    """Load a dataset folder; raise :class:`avrec.errors.ValidationError` listing every problem.
    With ``interactions`` off the interactions table is left unread (the dataset has none):
    :func:`avrec.data.stream.stream_folder` reads it in chunks instead."""
    root = Path(path).resolve()
    if not root.is_dir():
        raise AvrecError(f"{path}: not a folder")
    rules = rules or Rules()
    items_file = find_table(root, "items")
    if items_file is None:
        raise AvrecError(f"{root}: no items.csv, items.jsonl or items.parquet")
    inter_file = find_table(root, "interactions") if interactions else None
    users_file = find_table(root, "users")

    out = Collector()
    items = read_table(items_file)
    inter = read_table(inter_file) if inter_file else None
    users = read_table(users_file) if users_file else None
    if validate:
        validate_items(items, root, rules, out)
        user_ids = None
        if users is not None:
            validate_users(users, rules, out)
            if "user_id" in users.frame:
                user_ids = set(users.frame["user_id"].astype(str).str.strip())
        if inter is not None:
            item_ids = (
                set(items.frame["item_id"].astype(str).str.strip())
                if "item_id" in items.frame
                else set()
            )
            validate_interactions(inter, item_ids, user_ids, rules, out)
        out.raise_if_any()
    return Dataset(
        items=strip_frame(items.frame),
        interactions=strip_frame(inter.frame)
        if inter is not None
        else pd.DataFrame({"user_id": [], "item_id": []}),
        users=strip_frame(users.frame) if users is not None else None,
        root=root,
        name=root.name,
        meta={"source_format": "folder", "files": [t.file for t in (items, inter, users) if t]},
    )


def raw_tables(path: Path) -> dict[str, RawTable]:
    """The raw tables of a folder (for tools that report on files without loading them)."""
    root = Path(path)
    tables = {}
    for stem in ("items", "interactions", "users"):
        found = find_table(root, stem)
        if found:
            tables[stem] = read_table(found)
    return tables
