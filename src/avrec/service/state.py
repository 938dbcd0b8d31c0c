"""What the running service holds: model, database engine, catalog view, vector index over
the items' content vectors, and the online user states (rebuilt from the event log)."""

from __future__ import annotations

import threading
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from avrec.feedback.online import OnlineStates
from avrec.index.base import VectorIndex, load_or_build
from avrec.models.base import Recommender
from avrec.models.capabilities import ScoresRequests, content_part, request_encoder
from avrec.service.catalog import Catalog
from avrec.service.impressions import ImpressionLog, Server
from avrec.service.rwlock import ReadWriteLock
from avrec.service.settings import ServiceSettings
from avrec.storage import tables as t

USER_LOCK_STRIPES = 256


def model_version(model: Recommender, folder: Path) -> str:
    """The trained model's version id (``storage.registry.version_of``: its name and a hash of
    its manifest), also for folders never registered; the model's name without a folder."""
    from avrec.storage.registry import RegistryError, version_of

    try:
        return version_of(folder)
    except RegistryError:
        return model.name


class ServiceState:
    def __init__(
        self,
        model: Recommender,
        engine: Engine,
        media_root: Path | None,
        settings: ServiceSettings | None = None,
    ):
        self.model = model
        self.engine = engine
        self.media_root = media_root
        self.settings = settings or ServiceSettings(model_dir=Path("."))
        self.online = OnlineStates(self.item_vector)
        self.lock = threading.RLock()
        #: faiss indexes may not be searched while rows are added: searches share it, adds own it
        self.index_lock = ReadWriteLock()
        #: writes of one user (an event: insert + online update; a deletion: rows, folders and
        #: memory) hold that user's lock, so they never interleave; striped, so memory stays flat
        self._user_locks = [threading.Lock() for _ in range(USER_LOCK_STRIPES)]
        #: users deleted since the model was trained: their training rows are ignored
        self.forgotten: set[str] = self._deleted_users()
        #: the last event applied to the online states (catch_up starts after it)
        self.last_event_id = 0
        self.refresh_catalog()
        self.catch_up_catalog()
        self.replay_events()
        s = self.settings
        #: the version id of the model served (the registry's id for its folder)
        self.model_version = model_version(model, s.model_dir)
        #: the serving policy and the log of what was shown (service/impressions.py)
        self.server = Server(
            s.policy,
            ImpressionLog(engine) if s.log_impressions else None,
            self.model_version,
            s.exploration_seed,
        )

    def close(self) -> None:
        """Write the impressions still queued (at shutdown)."""
        if self.server.impressions is not None:
            self.server.impressions.close()

    def release(self) -> None:
        """Drop everything this state holds, a part at a time, giving other threads the
        interpreter between parts (a state replaced by a model swap, once no request runs on
        it). Its memory is freed now, by the caller: the state refers to itself (the online
        states look item vectors up through it) and the service freezes loaded states out of
        garbage collection, so otherwise it would never be freed. Unusable afterwards."""
        model = self.__dict__.get("model")
        for holder in (model, self):
            for name in list(vars(holder)) if holder is not None else []:
                delattr(holder, name)
                time.sleep(0)

    # ---- catalog and content index ---------------------------------------------------
    def refresh_catalog(self) -> None:
        """A new catalog view after the model's items changed; the index only grows."""
        with self.lock:
            _, item_vocab, matrix = self.model.fitted_parts()
            frame = (
                self.model.catalog
                if self.model.catalog is not None
                else pd.DataFrame({"item_id": item_vocab.ids})
            )
            content = content_part(self.model)
            vectors = None if content is None else content.vectors
            self.items = Catalog(
                frame,
                item_vocab,
                np.bincount(matrix.indices, minlength=matrix.shape[1]),
                vectors,
                self._updated_index(vectors),
                self.index_lock,
            )

    def _updated_index(self, vectors: np.ndarray | None) -> VectorIndex | None:
        """Build (or load) the index once; later calls add only the rows appended since."""
        index = self.items.index if hasattr(self, "items") else None
        if vectors is None:
            return None
        if index is not None and len(index) <= len(vectors):
            if len(index) < len(vectors):
                with self.index_lock.write():
                    index.add(vectors[len(index) :])
            return index
        s = self.settings
        kind = s.index_kind
        if kind == "auto":
            kind = "exact" if len(vectors) < s.index_min_items else "ivf"
        folder = s.index_dir or (s.model_dir / f"index-{kind}" if kind != "exact" else None)
        return load_or_build(vectors, kind, folder, **s.index_options)

    @property
    def use_index(self) -> bool:
        """Whether recommendations go through the vector index (see ``retrieval``)."""
        if self.items.index is None:
            return False
        if self.settings.retrieval == "auto":
            from avrec.index.cascade import use_cascade

            # a model that ranks the cascade's candidates cheaply keeps its own scores there
            big = len(self.items) >= self.settings.index_min_items
            return big and not use_cascade(self.model)
        return self.settings.retrieval == "index"

    @property
    def cascade(self):
        """The retrieval cascade (avrec.index.cascade) the model path ranks through, or None
        for the full ranking: ``retrieval = "cascade"``, or ``auto`` on catalogs from the
        cascade's ``min_items`` on (where the index path is not taken). Rebuilt when the
        catalog grows."""
        from avrec.index.cascade import Cascade, use_cascade

        s = self.settings.retrieval
        wanted = s == "cascade" or (s == "auto" and use_cascade(self.model))
        if not wanted:
            return None
        n_items = len(self.model.fitted_parts()[1])
        built = self.__dict__.get("_cascade")
        if built is None or built.n_items != n_items:
            built = self._cascade = Cascade(self.model)
        return built

    def item_vector(self, item_id: str) -> np.ndarray | None:
        return self.items.vector(item_id) if hasattr(self, "items") else None

    def catch_up_catalog(self) -> list[str]:
        """Items stored after the model was saved (e.g. ingested through the API before a
        restart) join the model again, encoded from their stored text, so a restart keeps
        them recommendable. Models that cannot add items keep the catalog they were trained on."""
        with self.engine.connect() as conn:
            stored = conn.execute(select(t.items.c.item_id)).scalars().all()
        missing = self.items.unknown(stored)
        if not missing or not self.model.content_aware:
            return []
        cols = [
            c
            for c in (
                "item_id",
                "title",
                "description",
                "genres",
                "tags",
                "kind",
                "year",
                "language",
            )
            if c in t.items.c
        ]
        rows: list[Any] = []
        with self.engine.connect() as conn:
            for start in range(0, len(missing), 500):
                rows += conn.execute(
                    select(*[t.items.c[c] for c in cols]).where(
                        t.items.c.item_id.in_(missing[start : start + 500])
                    )
                ).all()
        frame = pd.DataFrame([tuple(r) for r in rows], columns=cols)
        with self.lock:
            try:
                added = self.model.add_items(frame)
            except NotImplementedError:
                return []
            self.refresh_catalog()
        return added

    def query_model(self) -> ScoresRequests | None:
        return request_encoder(self.model)

    # ---- users ------------------------------------------------------------------------
    def _deleted_users(self) -> set[str]:
        with self.engine.connect() as conn:
            stored = set(conn.execute(select(t.users.c.user_id)).scalars())
        if not stored:  # a database that never held users (model trained elsewhere)
            return set()
        user_vocab = self.model.fitted_parts()[0]
        return {str(u) for u in user_vocab.ids if str(u) not in stored}

    def user_lock(self, user_id: str) -> threading.Lock:
        """The lock serializing writes of ``user_id`` (shared with a few other users)."""
        return self._user_locks[zlib.crc32(user_id.encode("utf-8")) % USER_LOCK_STRIPES]

    def knows(self, user_id: str) -> bool:
        user_vocab = self.model.fitted_parts()[0]
        return (user_id in user_vocab and user_id not in self.forgotten) or user_id in self.online

    def training_history(self, user_id: str) -> list[str]:
        """The user's training items, oldest first (empty for users the model never saw)."""
        user_vocab, item_vocab, train_matrix = self.model.fitted_parts()
        if user_id not in user_vocab or user_id in self.forgotten:
            return []
        row = user_vocab.index(user_id)
        source = self.model.train_recency if self.model.train_recency is not None else train_matrix
        start, stop = source.indptr[row], source.indptr[row + 1]
        idx, rank = source.indices[start:stop], source.data[start:stop]
        return [str(i) for i in item_vocab.ids[idx[np.argsort(-rank, kind="stable")]]]

    def user_state(self, user_id: str):
        return self.online.get(user_id, self.training_history(user_id))

    def user_snapshot(self, user_id: str):
        return self.online.snapshot(user_id, self.training_history(user_id))

    def replay_events(self, after: int = 0) -> None:
        """Rebuild every user's online state from the durable event log, in order (``after``:
        only the events stored after that id, to catch up a state built a moment ago)."""
        c = t.feedback_events.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.id, c.user_id, c.item_id, c.event, c.value, c.watch_fraction)
                .where(c.id > after)
                .order_by(c.id)
            ).all()
        for event_id, user, item, event, value, frac in rows:
            self.online.apply(user, item, event, value, frac, self.training_history(user))
            self.last_event_id = max(self.last_event_id, int(event_id))

    def catch_up(self) -> None:
        """Apply what changed since this state was built (events stored, users deleted):
        run before it replaces the state serving now, while event writes wait."""
        self.replay_events(after=self.last_event_id)
        for user in self._deleted_users() - self.forgotten:
            self.online.drop(user)
            self.forgotten.add(user)

    def expire_events(self, older_than_days: float) -> dict[str, int]:
        """Retention: delete the stored events older than the age, then rebuild the online
        state of each user who lost some from the events they have left, under their lock (so
        the service holds what a restart would replay). Returns the rows deleted per table."""
        from avrec.storage.retention import expire_events

        removed, users = expire_events(self.engine, older_than_days)
        c = t.feedback_events.c
        for user in sorted(users):
            with self.user_lock(user):
                self.online.drop(user)
                with self.engine.connect() as conn:
                    rows = conn.execute(
                        select(c.item_id, c.event, c.value, c.watch_fraction)
                        .where(c.user_id == user)
                        .order_by(c.id)
                    ).all()
                history = self.training_history(user)
                for item, event, value, frac in rows:
                    self.online.apply(user, item, event, value, frac, history)
        return removed

    def media_root_for(self) -> Path | None:
        if self.media_root is not None:
            return self.media_root
        with self.engine.connect() as conn:
            root = conn.execute(
                select(t.datasets.c.root)
                .where(t.datasets.c.root.is_not(None))
                .order_by(t.datasets.c.ingested_at.desc())
            ).scalar()
        return Path(root) if root else None
