"""What the running service holds: model, database engine, catalog view, vector index over
the items' content vectors, and the online user states (rebuilt from the event log)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from avrec.feedback.online import OnlineStates
from avrec.index.base import ExactIndex
from avrec.models.base import Recommender
from avrec.storage import tables as t


class ServiceState:
    def __init__(self, model: Recommender, engine: Engine, media_root: Path | None):
        self.model = model
        self.engine = engine
        self.media_root = media_root
        self.online = OnlineStates()
        self.lock = threading.RLock()
        #: users deleted since the model was trained: their training rows are ignored
        self.forgotten: set[str] = self._deleted_users()
        self.refresh_catalog()
        self.replay_events()

    # ---- catalog and content index ---------------------------------------------------
    def refresh_catalog(self) -> None:
        with self.lock:
            cat = self.model.catalog if self.model.catalog is not None else pd.DataFrame(
                {"item_id": self.model.item_vocab.ids})
            self.catalog = cat.reset_index(drop=True)
            self.position = {i: n for n, i in enumerate(self.catalog["item_id"])}
            vectors = self.content_vectors()
            self.index = None
            if vectors is not None:
                self.index = ExactIndex(vectors.shape[1])
                self.index.add(vectors)

    def content_vectors(self) -> np.ndarray | None:
        content = getattr(self.model, "content", self.model)
        return getattr(content, "vectors", None)

    def query_model(self):
        content = getattr(self.model, "content", self.model)
        return content if getattr(content, "query_vectors", None) is not None else None

    # ---- users ------------------------------------------------------------------------
    def _deleted_users(self) -> set[str]:
        with self.engine.connect() as conn:
            stored = set(conn.execute(select(t.users.c.user_id)).scalars())
        if not stored:  # a database that never held users (model trained elsewhere)
            return set()
        return {str(u) for u in self.model.user_vocab.ids if str(u) not in stored}

    def knows(self, user_id: str) -> bool:
        return (user_id in self.model.user_vocab and user_id not in self.forgotten) or user_id in self.online

    def training_history(self, user_id: str) -> list[str]:
        """The user's training items, oldest first (empty for users the model never saw)."""
        if user_id not in self.model.user_vocab or user_id in self.forgotten:
            return []
        row = self.model.user_vocab.index(user_id)
        source = self.model.train_recency if self.model.train_recency is not None else self.model.train_matrix
        start, stop = source.indptr[row], source.indptr[row + 1]
        idx, rank = source.indices[start:stop], source.data[start:stop]
        return [str(i) for i in self.model.item_vocab.ids[idx[np.argsort(-rank, kind="stable")]]]

    def user_state(self, user_id: str):
        return self.online.get(user_id, self.training_history(user_id))

    def replay_events(self) -> None:
        """Rebuild every user's online state from the durable event log, in order."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.feedback_events.c.user_id, t.feedback_events.c.item_id,
                                       t.feedback_events.c.event, t.feedback_events.c.value,
                                       t.feedback_events.c.watch_fraction)
                                .order_by(t.feedback_events.c.id)).all()
        for user, item, event, value, frac in rows:
            self.online.apply(user, item, event, value, frac, self.training_history(user))

    def media_root_for(self) -> Path | None:
        if self.media_root is not None:
            return self.media_root
        with self.engine.connect() as conn:
            root = conn.execute(select(t.datasets.c.root).where(t.datasets.c.root.is_not(None))
                                .order_by(t.datasets.c.ingested_at.desc())).scalar()
        return Path(root) if root else None
