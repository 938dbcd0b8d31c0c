"""Read the catalog and interactions back from the database as a :class:`Dataset`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from avrec.data.dataset import INTERACTION_COLUMNS, ITEM_COLUMNS, Dataset
from avrec.storage import tables as t
from avrec.storage.consent import may_train
from avrec.storage.db import get_engine


def load_from_db(
    engine: Engine | None = None, dataset: str | None = None, consented_only: bool = True
) -> Dataset:
    """Everything in the database (or one ingested dataset's items and their interactions).

    This is the path from the database to training data (``avrec demo`` trains on it; a
    training command that reads the database must read through it too). ``consented_only``
    (default): the interactions and user rows of people who opted out of training
    (``avrec.storage.consent``) are left out; ``False`` reads every row."""
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
        uq = select(t.users.c.user_id, t.users.c.attributes)
        if consented_only:
            qi = qi.where(may_train(t.interactions.c.user_id))
            uq = uq.where(may_train(t.users.c.user_id))
        inter = pd.DataFrame(
            conn.execute(qi.order_by(t.interactions.c.id)).all(), columns=INTERACTION_COLUMNS
        )
        users = pd.DataFrame(
            conn.execute(uq).all(),
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


#: the feedback_events columns a training set may use
EVENT_COLUMNS = ["id", "user_id", "item_id", "event", "value", "watch_fraction", "created_at"]


def events_for_training(engine: Engine | None = None) -> pd.DataFrame:
    """The stored feedback events of every user who did not opt out of training, oldest
    first: what a training command that learns from the service's events must read (no
    training reads events today; the service's online state reads them for everyone)."""
    engine = engine or get_engine()
    c = t.feedback_events.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(*[c[n] for n in EVENT_COLUMNS]).where(may_train(c.user_id)).order_by(c.id)
        ).all()
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)
