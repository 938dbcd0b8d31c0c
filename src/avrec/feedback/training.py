"""Training data from what the service saw: the database's catalog and interactions plus the
stored feedback events, each event kind turned into a signed weight by one table.

| event | signal |
|---|---|
| like, purchase | +1 |
| click | +0.5 |
| view | +0.3 |
| play | + its watch fraction (0.5 when not given); under 0.2 watched, -0.25 (abandoned) |
| rating | (value - 3) / 2: a 5 is +1, a 3 is 0, a 1 is -1 |
| skip | -0.5 |
| dislike | -1 |

A (person, item) pair's events are summed. A positive sum becomes a training interaction whose
weight is the sum (at most :data:`MAX_WEIGHT`) and whose time is the pair's last event, so the
models' recency parts see it; a negative sum is a negative: the pair is removed from the
training interactions (a dislike after an ingested rating wins), and counted. Only the events
of people who did not opt out of training are read (``storage.repository.events_for_training``),
and likewise their interactions (``load_from_db``). ``window_days`` keeps only recent events,
``min_events`` leaves out people with fewer events. The largest event id read is the
watermark: what the next training would add is the events after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from avrec.data.dataset import Dataset
from avrec.errors import AvrecError
from avrec.storage.repository import events_for_training, load_from_db

#: fixed signals; ``play`` and ``rating`` are computed (see the module's table)
SIGNALS = {"like": 1.0, "purchase": 1.0, "click": 0.5, "view": 0.3, "skip": -0.5, "dislike": -1.0}
PLAY_DEFAULT_FRACTION = 0.5
PLAY_ABANDONED_BELOW = 0.2
PLAY_ABANDONED = -0.25
RATING_CENTRE, RATING_SCALE = 3.0, 2.0
#: the largest weight one pair's events give
MAX_WEIGHT = 3.0


class EventPolicyError(AvrecError, ValueError):
    """Event-reading settings that cannot be used."""


@dataclass(frozen=True)
class EventPolicy:
    window_days: float | None = None
    min_events: int = 1

    def __post_init__(self) -> None:
        if self.window_days is not None and not 0 < self.window_days < float("inf"):
            raise EventPolicyError(f"the event window must be > 0 days, not {self.window_days}")
        if self.min_events < 1:
            raise EventPolicyError(f"the minimum event count must be >= 1, not {self.min_events}")


@dataclass
class DbTrainingData:
    """A dataset built from the database, and what the events added to it."""

    dataset: Dataset
    watermark: int
    events_read: int
    positives_added: int
    negatives: int
    policy: EventPolicy = field(default_factory=EventPolicy)

    def record(self) -> dict:
        """What a model trained on it writes down (``training_data.json``)."""
        return {
            "source": "database",
            "event_watermark": self.watermark,
            "events_read": self.events_read,
            "interactions": len(self.dataset.interactions),
            "pairs_from_events": self.positives_added,
            "negative_pairs": self.negatives,
            "window_days": self.policy.window_days,
            "min_events": self.policy.min_events,
        }


def event_signals(events: pd.DataFrame) -> np.ndarray:
    """The signed weight of each event (rows with ``event``, ``value``, ``watch_fraction``)."""
    kind = events["event"].astype(str).to_numpy()
    out = np.array([SIGNALS.get(k, 0.0) for k in kind], dtype=np.float64)
    frac = pd.to_numeric(events["watch_fraction"], errors="coerce").to_numpy(dtype=float)
    frac = np.where(np.isnan(frac), PLAY_DEFAULT_FRACTION, frac)
    play = kind == "play"
    out[play] = np.where(frac[play] < PLAY_ABANDONED_BELOW, PLAY_ABANDONED, frac[play])
    value = pd.to_numeric(events["value"], errors="coerce").to_numpy(dtype=float)
    rating = (kind == "rating") & ~np.isnan(value)
    out[rating] = (value[rating] - RATING_CENTRE) / RATING_SCALE
    return out


def _seconds(times: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(times, utc=True)
    return (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)


def events_to_pairs(
    events: pd.DataFrame, policy: EventPolicy = EventPolicy(), now: datetime | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(positives, negatives)``: one row per (user_id, item_id) with the summed ``signal``
    and the ``timestamp`` (seconds) of the pair's last event, after the window and the
    minimum count."""
    cols = ["user_id", "item_id", "signal", "timestamp"]
    if events.empty:
        return pd.DataFrame(columns=cols), pd.DataFrame(columns=cols)
    ev = events.assign(signal=event_signals(events), timestamp=_seconds(events["created_at"]))
    if policy.window_days is not None:
        end = (now or datetime.now(UTC)).timestamp()
        ev = ev[ev["timestamp"] >= end - policy.window_days * 86_400]
    if policy.min_events > 1:
        counts = ev.groupby("user_id")["event"].transform("size")
        ev = ev[counts >= policy.min_events]
    pairs = (
        ev.groupby(["user_id", "item_id"], sort=True)
        .agg(signal=("signal", "sum"), timestamp=("timestamp", "max"))
        .reset_index()
    )
    return pairs[pairs["signal"] > 0][cols], pairs[pairs["signal"] < 0][cols]


def training_from_db(
    engine: Engine,
    policy: EventPolicy = EventPolicy(),
    now: datetime | None = None,
    events: pd.DataFrame | None = None,
) -> DbTrainingData:
    """The database's catalog and (consented) interactions, with the feedback events merged
    in as described above (``events``: those already read by ``events_for_training``)."""
    base = load_from_db(engine)
    if events is None:
        events = events_for_training(engine)
    return merge_events(base, events, policy, now)


def merge_events(
    base: Dataset,
    events: pd.DataFrame,
    policy: EventPolicy = EventPolicy(),
    now: datetime | None = None,
) -> DbTrainingData:
    """``base`` (a catalog and its interactions) with ``events`` (rows as
    ``events_for_training`` reads them: ``id``, ``user_id``, ``item_id``, ``event``, ``value``,
    ``watch_fraction``, ``created_at``) merged in as described above; events naming items not
    in the catalog are left out."""
    positives, negatives = events_to_pairs(events, policy, now)
    inter = base.interactions
    key = ["user_id", "item_id"]
    if len(negatives):
        dropped = inter.merge(negatives[key], on=key, how="left", indicator=True)["_merge"]
        inter = inter[(dropped == "left_only").to_numpy()]
    known = set(base.items["item_id"])
    positives = positives[positives["item_id"].isin(known)]
    added = pd.DataFrame(
        {
            "user_id": positives["user_id"],
            "item_id": positives["item_id"],
            "weight": np.minimum(positives["signal"].to_numpy(dtype=float), MAX_WEIGHT),
            "timestamp": positives["timestamp"],
            "event": "feedback",
        }
    )
    merged = pd.concat([inter, added], ignore_index=True) if len(added) else inter
    dataset = Dataset(
        base.items, merged, base.users, root=base.root, name="database", meta=base.meta
    )
    watermark = int(events["id"].max()) if len(events) else 0
    return DbTrainingData(dataset, watermark, len(events), len(added), len(negatives), policy)
