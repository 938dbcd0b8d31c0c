"""Online user state: each feedback event updates the user's history in place, so the very
next recommendation reflects it. Models re-score from the updated history (the same path as a
request with an explicit history), so nothing is retrained.

Event semantics:
- ``like``, ``rating`` >= 4, ``play``/``view`` with watch fraction >= 0.5, ``purchase``,
  ``click``: the item joins the history as the most recent positive item;
- ``dislike``, ``skip``, ``rating`` <= 2, ``play``/``view`` with watch fraction < 0.2: the item
  leaves the history, is not recommended again, and items similar to it are pushed down.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

EVENTS = ("view", "play", "like", "dislike", "skip", "rating", "click", "purchase")
#: weights in the readable profile
PROFILE_WEIGHT = {"like": 2.0, "purchase": 2.0, "rating": 1.0, "play": 1.0, "view": 0.5,
                  "click": 0.5, "history": 1.0}


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
    history: list[str] = field(default_factory=list)   # oldest first, positives only
    negatives: list[str] = field(default_factory=list)
    weights: Counter = field(default_factory=Counter)  # item -> profile weight
    events: int = 0

    def apply(self, item_id: str, event: str, value: float | None = None,
              watch_fraction: float | None = None) -> int:
        sign = polarity(event, value, watch_fraction)
        self.events += 1
        if sign > 0:
            if item_id in self.history:
                self.history.remove(item_id)
            self.history.append(item_id)
            if item_id in self.negatives:
                self.negatives.remove(item_id)
            self.weights[item_id] += PROFILE_WEIGHT.get(event, 1.0)
        elif sign < 0:
            if item_id in self.history:
                self.history.remove(item_id)
            if item_id not in self.negatives:
                self.negatives.append(item_id)
            self.weights.pop(item_id, None)
        return sign


class OnlineStates:
    """All users' online states, thread-safe; seeded lazily from the training history."""

    def __init__(self):
        self._states: dict[str, UserState] = {}
        self._lock = threading.Lock()

    def get(self, user_id: str, seed_history: list[str] | None = None) -> UserState:
        with self._lock:
            state = self._states.get(user_id)
            if state is None:
                state = UserState(history=list(seed_history or []))
                for item in state.history:
                    state.weights[item] += PROFILE_WEIGHT["history"]
                self._states[user_id] = state
            return state

    def apply(self, user_id: str, item_id: str, event: str, value: float | None,
              watch_fraction: float | None, seed_history: list[str] | None = None) -> int:
        state = self.get(user_id, seed_history)
        with self._lock:
            return state.apply(item_id, event, value, watch_fraction)

    def drop(self, user_id: str) -> None:
        with self._lock:
            self._states.pop(user_id, None)

    def __contains__(self, user_id: str) -> bool:
        return user_id in self._states
