"""Explanations for lists retrieved by vector similarity (the service's index path): which
history items the user vector owes each item's score to, and the genres they share.

For a user vector ``u = sum(h) / ||sum(h)||`` the score of item ``i`` is
``sum_h (v_i · v_h) / ||sum(h)||``, an exact additive decomposition over the history (the same
one as the content model's ``contributions``), so the cited items are the true main terms."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from avrec.models.explain import history_sentences


def explain_by_history(
    vectors: np.ndarray,
    history: Sequence[int],
    items: Sequence[int] | np.ndarray,
    title: Callable[[int], str],
    genres: Callable[[int], list[str]],
    popularity: np.ndarray | None = None,
) -> list[str]:
    """One sentence per item of ``items`` (catalog positions); ``history``: positions."""
    positions = np.asarray(items, dtype=np.int64)
    if not len(positions):
        return []
    hist = np.asarray(list(history), dtype=np.int64)
    contrib = None
    if len(hist):
        hv = vectors[hist]
        contrib = (vectors[positions] @ hv.T) / (float(np.linalg.norm(hv.sum(axis=0))) or 1.0)

    def shared(item: int, top: list[int]) -> list[str]:
        theirs = {g for j in top for g in genres(j)}
        return [g for g in genres(item) if g in theirs][:3]

    def fallback(item: int) -> str:
        count = int(popularity[item]) if popularity is not None and item < len(popularity) else 0
        return (
            f"popular: {count} people interacted with it"
            if count
            else "close to the content you chose"
        )

    return history_sentences(contrib, hist, positions, title, shared, fallback)
