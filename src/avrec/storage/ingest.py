"""Ingest a dataset into the database: validated, all-or-nothing per batch, idempotent."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, func, select

from avrec.data.dataset import (
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    MEDIA_COLUMNS,
    Dataset,
    normalize_interactions,
)
from avrec.data.validation import Rules
from avrec.errors import Problem, ValidationError
from avrec.storage import tables as t
from avrec.storage.bulk import upsert
from avrec.storage.db import get_engine

ITEM_FIELDS = [c for c in ITEM_COLUMNS if c != "item_id"]
INTERACTION_UPDATE = ["rating", "weight", "comment"]


@dataclass
class IngestReport:
    """What an ingest did (or, with ``dry_run``, would do)."""

    dataset: str
    items: int
    users: int
    interactions: int
    dry_run: bool
    seconds: float

    def __str__(self) -> str:
        verb = "validated (dry run, nothing written)" if self.dry_run else "ingested"
        return (
            f"{self.dataset}: {verb} {self.items} items, {self.users} users, "
            f"{self.interactions} interactions in {self.seconds:.2f} s"
        )


def content_hash(record: dict) -> str:
    payload = json.dumps(record, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def item_rows(items: pd.DataFrame, dataset: str | None) -> pd.DataFrame:
    rows = items[ITEM_COLUMNS].copy()
    rows = rows.astype(object).where(rows.notna(), None)
    extra_cols = [c for c in items.columns if c not in ITEM_COLUMNS]
    rows["extra"] = (
        [{c: items.at[i, c] for c in extra_cols} for i in items.index] if extra_cols else None
    )
    rows["dataset"] = dataset
    records = rows[ITEM_COLUMNS].to_dict("records")
    rows["content_hash"] = [content_hash(r) for r in records]
    return rows


def media_rows(items: pd.DataFrame, root, dataset: str | None) -> pd.DataFrame:
    """One row per (item, media kind) with the file's size and type where the file is there."""
    import mimetypes
    from pathlib import Path

    rows = []
    for col in MEDIA_COLUMNS:
        for item_id, rel in zip(items["item_id"], items[col], strict=True):
            if not isinstance(rel, str) or not rel:
                continue
            size = None
            if root is not None and (Path(root) / rel).is_file():
                size = (Path(root) / rel).stat().st_size
            rows.append(
                {
                    "item_id": item_id,
                    "kind": col,
                    "path": rel,
                    "dataset": dataset,
                    "bytes": size,
                    "mime": mimetypes.guess_type(rel)[0],
                }
            )
    return pd.DataFrame(rows, columns=["item_id", "kind", "path", "dataset", "bytes", "mime"])


def interaction_rows(inter: pd.DataFrame) -> pd.DataFrame:
    rows = inter[INTERACTION_COLUMNS].copy()
    ts = rows["timestamp"].to_numpy(dtype=float, na_value=np.nan)
    rows["timestamp"] = np.where(np.isnan(ts), t.NO_TIMESTAMP, ts).astype(np.int64)
    rows["comment"] = rows["comment"].astype(object).where(rows["comment"].notna(), None)
    return rows


def user_rows(dataset: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(users with attributes, users only named by interactions)."""
    explicit = pd.DataFrame({"user_id": [], "attributes": []})
    if dataset.users is not None:
        attrs = [c for c in dataset.users.columns if c != "user_id"]
        explicit = pd.DataFrame(
            {
                "user_id": dataset.users["user_id"],
                "attributes": [
                    {c: (None if pd.isna(r[c]) else r[c]) for c in attrs}
                    for r in dataset.users.to_dict("records")
                ],
            }
        )
    implied = pd.DataFrame({"user_id": dataset.interactions["user_id"].unique()})
    implied = implied[~implied["user_id"].isin(set(explicit["user_id"]))]
    return explicit, implied


def check_references(conn: Connection, dataset: Dataset) -> None:
    """Interactions may name items from this batch or items already in the database."""
    unknown = set(dataset.interactions["item_id"]) - set(dataset.items["item_id"])
    if not unknown:
        return
    found: set[str] = set()
    ids = sorted(unknown)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found |= set(
            conn.execute(select(t.items.c.item_id).where(t.items.c.item_id.in_(chunk))).scalars()
        )
    missing = sorted(unknown - found)
    if missing:
        raise ValidationError(
            [
                Problem("interactions", None, "item_id", f"interaction names unknown item {m!r}")
                for m in missing[:50]
            ],
            total=len(missing),
        )


def _write_catalog(
    conn: Connection, dataset: Dataset, explicit: pd.DataFrame, source_format: str | None
) -> None:
    """The dataset's record, items, media and users with attributes (one transaction's part)."""
    if dataset.root is not None or source_format:
        upsert(
            conn,
            "datasets",
            pd.DataFrame(
                [
                    {
                        "name": dataset.name,
                        "root": str(dataset.root) if dataset.root else None,
                        "source_format": source_format or dataset.meta.get("source_format"),
                    }
                ]
            ),
            key=["name"],
            update=["root", "source_format"],
        )
    upsert(
        conn,
        "items",
        item_rows(dataset.items, dataset.name),
        key=["item_id"],
        update=[*ITEM_FIELDS, "extra", "dataset", "content_hash"],
        json_columns=["extra"],
        update_where="t.content_hash <> excluded.content_hash",
    )
    upsert(
        conn,
        "item_media",
        media_rows(dataset.items, dataset.root, dataset.name),
        key=["item_id", "kind"],
        update=["path", "dataset", "bytes", "mime"],
    )
    upsert(
        conn,
        "users",
        explicit,
        key=["user_id"],
        update=["attributes"],
        json_columns=["attributes"],
    )


def _write_interactions(conn: Connection, inter: pd.DataFrame, implied: pd.DataFrame) -> None:
    upsert(conn, "users", implied, key=["user_id"], update=[])
    upsert(
        conn,
        "interactions",
        interaction_rows(inter),
        key=["user_id", "item_id", "event", "timestamp"],
        update=INTERACTION_UPDATE,
    )


def ingest(
    dataset: Dataset,
    engine: Engine | None = None,
    *,
    dry_run: bool = False,
    source_format: str | None = None,
) -> IngestReport:
    """Write ``dataset`` in one transaction (upserts: re-ingest adds no duplicates).
    With ``dry_run`` the transaction is rolled back: validation and conflicts are checked,
    nothing is written."""
    engine = engine or get_engine()
    start = time.perf_counter()
    explicit, implied = user_rows(dataset)
    conn = engine.connect()
    try:
        with conn.begin() as tx:
            check_references(conn, dataset)
            _write_catalog(conn, dataset, explicit, source_format)
            _write_interactions(conn, dataset.interactions, implied)
            if dry_run:
                tx.rollback()
    finally:
        conn.close()
    return IngestReport(
        dataset.name,
        len(dataset.items),
        len(explicit) + len(implied),
        len(dataset.interactions),
        dry_run,
        time.perf_counter() - start,
    )


def ingest_folder(
    path: Path,
    engine: Engine | None = None,
    *,
    rules: Rules | None = None,
    chunk_rows: int | None = None,
    dry_run: bool = False,
) -> IngestReport:
    """A dataset folder into the database with its interactions streamed: read, validated and
    written ``chunk_rows`` at a time (:func:`avrec.data.stream.iter_table`), so memory does not
    grow with the interactions. Still one transaction: a problem in any chunk (every chunk is
    checked, and all problems reported) or a failed write leaves the database unchanged.
    A pair repeated in a later chunk updates the row, as a repeat within one batch does."""
    from avrec.data.loaders.folder import load_folder, strip_frame
    from avrec.data.readers import find_table
    from avrec.data.stream import iter_table
    from avrec.data.validation import Collector, merge_problems, validate_interactions

    engine = engine or get_engine()
    start = time.perf_counter()
    rules = rules or Rules()
    dataset = load_folder(path, rules=rules, interactions=False)
    explicit, _ = user_rows(dataset)
    known_items = set(dataset.items["item_id"])
    named = set(explicit["user_id"]) if dataset.users is not None else None
    found = find_table(dataset.root or Path(path), "interactions")
    problems = Collector()
    users: set[str] = set(explicit["user_id"])
    n_inter = 0
    conn = engine.connect()
    try:
        with conn.begin() as tx:
            _write_catalog(conn, dataset, explicit, None)
            for table in iter_table(found, chunk_rows) if found else ():
                chunk = Collector()
                validate_interactions(table, known_items, named, rules, chunk)
                merge_problems(problems, chunk)
                if problems.total or table.frame.empty:
                    continue  # the rest is still checked, nothing more is written
                inter = normalize_interactions(strip_frame(table.frame))
                new = pd.unique(inter["user_id"].to_numpy())
                implied = pd.DataFrame({"user_id": [u for u in new if u not in users]})
                users.update(implied["user_id"])
                _write_interactions(conn, inter, implied)
                n_inter += len(inter)
            problems.raise_if_any()
            if dry_run:
                tx.rollback()
    finally:
        conn.close()
    return IngestReport(
        dataset.name, len(dataset.items), len(users), n_inter, dry_run, time.perf_counter() - start
    )


def table_counts(engine: Engine | None = None) -> dict[str, int]:
    engine = engine or get_engine()
    names = [
        "items",
        "item_media",
        "users",
        "interactions",
        "feedback_events",
        "artifacts",
        "item_understanding",
    ]
    with engine.connect() as conn:
        return {
            n: conn.execute(select(func.count()).select_from(t.metadata.tables[n])).scalar_one()
            for n in names
        }
