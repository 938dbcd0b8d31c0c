"""Online user state: each feedback event updates the user's state in place, so the very next
recommendation reflects it, without retraining (cf. ``partial_fit_users`` in implicit).

The state holds the positive history (oldest first), the disliked/skipped items, readable
profile weights and, where the model has content vectors, two running vector sums: the liked
items' (the user vector that an index is searched with) and the rejected items' (pushed away).
Each event costs O(d).

Event semantics:
- ``like``, ``rating`` >= 4, ``play``/``view`` with watch fraction >= 0.5, ``purchase``,
  ``click``: the item joins the history as the most recent positive item;
- ``dislike``, ``skip``, ``rating`` <= 2, ``play``/``view`` with watch fraction < 0.2: the item
  leaves the history, is not recommended again, and items similar to it are pushed down;
- anything else (a middling rating or watch fraction) is counted but changes nothing.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

EVENTS = ("view", "play", "like", "dislike", "skip", "rating", "click", "purchase")
#: weights in the readable profile
PROFILE_WEIGHT = {
    "like": 2.0,
    "purchase": 2.0,
    "rating": 1.0,
    "play": 1.0,
    "view": 0.5,
    "click": 0.5,
    "history": 1.0,
}

VectorOf = Callable[[str], "np.ndarray | None"]


def polarity(event: str, value: float | None, watch_fraction: float | None) -> int:
    """+1 positive, -1 negative, 0 neutral."""
    if event in ("like", "purchase", "click"):
        return 1
    if event in ("dislike", "skip"):
        return -1
    if event == "rating" and value is not None:
        return 1 if value >= 4 else (-1 if value <= 2 else 0)
    if event in ("play", "view"):
        if watch_fraction is None:
            return 1
        return 1 if watch_fraction >= 0.5 else (-1 if watch_fraction < 0.2 else 0)
    return 0


@dataclass
class UserState:
    history: list[str] = field(default_factory=list)  # oldest first, positives only
    negatives: list[str] = field(default_factory=list)
    #: item -> profile weight, a float (typeshed types Counter counts as int: the ignores on +=)
    weights: Counter = field(default_factory=Counter)
    events: int = 0
    #: sum of the history items' content vectors (None: the model has none)
    vector: np.ndarray | None = None
    #: sum of the rejected items' content vectors
    negative_vector: np.ndarray | None = None
    #: bumped by every change, so readers can tell a state moved
    version: int = 0

    def apply(
        self,
        item_id: str,
        event: str,
        value: float | None = None,
        watch_fraction: float | None = None,
        vector: np.ndarray | None = None,
    ) -> int:
        sign = polarity(event, value, watch_fraction)
        self.events += 1
        self.version += 1
        if sign > 0:
            if item_id in self.history:
                self.history.remove(item_id)
            else:
                self.shift("vector", vector, +1)
            self.history.append(item_id)
            if item_id in self.negatives:
                self.negatives.remove(item_id)
                self.shift("negative_vector", vector, -1)
            gain = PROFILE_WEIGHT.get(event, 1.0)
            self.weights[item_id] += gain  # type: ignore[assignment]  # float counts
        elif sign < 0:
            if item_id in self.history:
                self.history.remove(item_id)
                self.shift("vector", vector, -1)
            if item_id not in self.negatives:
                self.negatives.append(item_id)
                self.shift("negative_vector", vector, +1)
            self.weights.pop(item_id, None)
        return sign

    def shift(self, name: str, vector: np.ndarray | None, sign: int) -> None:
        """Add (``sign`` +1) or remove (-1) an item's vector from the ``name`` sum."""
        if vector is None:
            return
        current = getattr(self, name)
        if current is None:
            current = np.zeros(len(vector), dtype=np.float64)
        current += sign * vector
        setattr(self, name, current)

    def query_vector(self) -> np.ndarray | None:
        """The L2-normalised user vector (mean direction of the history), or None."""
        if self.vector is None or not self.history:
            return None
        norm = float(np.linalg.norm(self.vector))
        return (self.vector / norm).astype(np.float32) if norm > 1e-9 else None


class OnlineStates:
    """All users' online states, thread-safe; seeded lazily from the training history.
    ``vector_of(item_id)`` gives an item's content vector (None when unknown or absent)."""

    def __init__(self, vector_of: VectorOf | None = None):
        self._states: dict[str, UserState] = {}
        self._lock = threading.Lock()
        self.vector_of = vector_of or (lambda _item: None)

    def get(self, user_id: str, seed_history: list[str] | None = None) -> UserState:
        with self._lock:
            state = self._states.get(user_id)
            if state is None:
                state = UserState(history=list(seed_history or []))
                for item in state.history:
                    gain = PROFILE_WEIGHT["history"]
                    state.weights[item] += gain  # type: ignore[assignment]  # float counts
                    state.shift("vector", self.vector_of(item), +1)
                self._states[user_id] = state
            return state

    def apply(
        self,
        user_id: str,
        item_id: str,
        event: str,
        value: float | None,
        watch_fraction: float | None,
        seed_history: list[str] | None = None,
    ) -> int:
        state = self.get(user_id, seed_history)
        vector = self.vector_of(item_id)
        with self._lock:
            return state.apply(item_id, event, value, watch_fraction, vector)

    def snapshot(self, user_id: str, seed_history: list[str] | None = None) -> UserState:
        """A consistent copy to read from while other events arrive."""
        state = self.get(user_id, seed_history)
        with self._lock:
            return UserState(
                list(state.history),
                list(state.negatives),
                Counter(state.weights),
                state.events,
                None if state.vector is None else state.vector.copy(),
                None if state.negative_vector is None else state.negative_vector.copy(),
                state.version,
            )

    def drop(self, user_id: str) -> None:
        with self._lock:
            self._states.pop(user_id, None)

    def __contains__(self, user_id: str) -> bool:
        return user_id in self._states

    def __len__(self) -> int:
        return len(self._states)
