"""What the service showed: the serving policy applied to each list, and the impression log.

Every list the recommendation routes return gets a ``list_id`` and is written to the
``impressions`` table, one row per item: position, score, the serving policy, the model version
and the propensity of that item at that place (``rerank.exploration``), so that a later
candidate model can be judged off-policy (``evaluation.ope``) before anyone sees it.

Rows are written by a background thread in batches, so a request never waits on the database
for its log. The queue is bounded: when the database is slow or down, lists past
``max_pending`` rows are dropped and counted (``dropped``) rather than growing memory.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque

import numpy as np
from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import SQLAlchemyError

from avrec.rerank.exploration import Policy, serve
from avrec.storage import tables as t

log = logging.getLogger("avrec.service")

BATCH = 5_000


class ImpressionLog:
    def __init__(self, engine: Engine, max_pending: int = 100_000, interval_s: float = 0.5):
        self.engine = engine
        self.max_pending = max_pending
        self.interval_s = interval_s
        self.written = 0
        self.dropped = 0
        self._rows: deque[dict] = deque()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="avrec-impressions", daemon=True)
        self._thread.start()

    def record(self, rows: list[dict]) -> None:
        with self._lock:
            if len(self._rows) + len(rows) > self.max_pending:
                self.dropped += len(rows)
                return
            self._rows.extend(rows)

    def flush(self) -> int:
        """Write everything pending now; returns the rows written (0 when the database
        refused them: they stay queued for the next try)."""
        done = 0
        with self._write_lock:
            while True:
                with self._lock:
                    batch = [self._rows.popleft() for _ in range(min(BATCH, len(self._rows)))]
                if not batch:
                    return done
                try:
                    with self.engine.begin() as conn:
                        conn.execute(insert(t.impressions), batch)
                except SQLAlchemyError as exc:
                    log.warning("impressions not written yet (%s); retrying", type(exc).__name__)
                    with self._lock:
                        self._rows.extendleft(reversed(batch))
                    return done
                done += len(batch)
                self.written += len(batch)

    def forget(self, user_id: str) -> int:
        """Remove the user's impressions, queued and stored (a deletion). Holding the write
        lock, no batch with their rows can be committed behind this."""
        with self._write_lock:
            with self._lock:
                kept = [r for r in self._rows if r["user_id"] != user_id]
                removed = len(self._rows) - len(kept)
                self._rows = deque(kept)
            with self.engine.begin() as conn:
                removed += conn.execute(
                    delete(t.impressions).where(t.impressions.c.user_id == user_id)
                ).rowcount
        return removed

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def close(self) -> None:
        """Stop the writer and write what is left."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()


class Server:
    """Applies the serving policy to a model's list and logs what was shown."""

    def __init__(
        self,
        policy: Policy,
        impressions: ImpressionLog | None,
        model_version: str,
        seed: int | None = None,
    ):
        self.policy = policy
        self.impressions = impressions
        self.model_version = model_version
        self._rng = np.random.default_rng(seed)
        self._rng_lock = threading.Lock()

    @property
    def depth(self) -> int:
        """How many items to ask the model for to show ``k``: the pool when exploring."""
        return self.policy.pool if self.policy.explores else 0

    def show(self, user_id: str | None, rows: list[dict], k: int) -> tuple[str, list[dict]]:
        """``rows``: the model's list, best first (dicts with ``item_id`` and ``score``).
        Returns the list id and the rows shown."""
        scores = np.array([r["score"] for r in rows], dtype=np.float64)
        with self._rng_lock:
            picked, props = serve([r["item_id"] for r in rows], scores, k, self.policy, self._rng)
        shown = [rows[i] for i in picked]
        list_id = str(uuid.uuid4())
        if self.impressions is not None and shown:
            self.impressions.record(
                [
                    {
                        "list_id": list_id,
                        "user_id": user_id,
                        "item_id": r["item_id"],
                        "position": place,
                        "score": float(r["score"]),
                        "propensity": float(p),
                        "policy": self.policy.kind,
                        "model_version": self.model_version,
                    }
                    for place, (r, p) in enumerate(zip(shown, props, strict=True))
                ]
            )
        return list_id, shown
