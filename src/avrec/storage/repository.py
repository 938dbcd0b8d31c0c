"""Read the catalog and interactions back from the database as a :class:`Dataset`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from avrec.data.dataset import INTERACTION_COLUMNS, ITEM_COLUMNS, Dataset
from avrec.storage import tables as t
from avrec.storage.db import get_engine


def load_from_db(engine: Engine | None = None, dataset: str | None = None) -> Dataset:
    """Everything in the database (or one ingested dataset's items and their interactions)."""
    engine = engine or get_engine()
    with engine.connect() as conn:
        q = select(*[t.items.c[c] for c in ITEM_COLUMNS])
        if dataset:
            q = q.where(t.items.c.dataset == dataset)
        items = pd.DataFrame(
            conn.execute(q.order_by(t.items.c.item_id)).all(), columns=ITEM_COLUMNS
        )
        qi = select(*[t.interactions.c[c] for c in INTERACTION_COLUMNS])
        if dataset:
            qi = qi.where(
                t.interactions.c.item_id.in_(
                    select(t.items.c.item_id).where(t.items.c.dataset == dataset)
                )
            )
        inter = pd.DataFrame(
            conn.execute(qi.order_by(t.interactions.c.id)).all(), columns=INTERACTION_COLUMNS
        )
        users = pd.DataFrame(
            conn.execute(select(t.users.c.user_id, t.users.c.attributes)).all(),
            columns=["user_id", "attributes"],
        )
        root = None
        if dataset:
            root = conn.execute(
                select(t.datasets.c.root).where(t.datasets.c.name == dataset)
            ).scalar()
    inter["timestamp"] = inter["timestamp"].astype(float).replace(float(t.NO_TIMESTAMP), np.nan)
    attrs = pd.json_normalize([a or {} for a in users["attributes"]])
    users = pd.concat([users[["user_id"]], attrs], axis=1)
    return Dataset(
        items,
        inter,
        users if len(attrs.columns) else None,
        root=Path(root) if root else None,
        name=dataset or "database",
    )
