"""Explanations for lists retrieved by vector similarity (the service's index path): which
history items the user vector owes each item's score to, and the genres they share.

For a user vector ``u = sum(h) / ||sum(h)||`` the score of item ``i`` is
``sum_h (v_i · v_h) / ||sum(h)||``, an exact additive decomposition over the history (the same
one as the content model's ``contributions``), so the cited items are the true main terms."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

MAX_REASONS = 2


def explain_by_history(vectors: np.ndarray, history: Sequence[int], items: Sequence[int],
                       title: Callable[[int], str], genres: Callable[[int], list[str]],
                       popularity: np.ndarray | None = None) -> list[str]:
    """One sentence per item of ``items`` (catalog positions); ``history``: positions."""
    items = np.asarray(items, dtype=np.int64)
    if not len(items):
        return []
    hist = np.asarray(list(history), dtype=np.int64)
    out = []
    contrib = None
    if len(hist):
        hv = vectors[hist]
        norm = float(np.linalg.norm(hv.sum(axis=0))) or 1.0
        contrib = (vectors[items] @ hv.T) / norm
    for n, item in enumerate(items):
        if contrib is None or not np.any(contrib[n] > 0):
            count = int(popularity[item]) if popularity is not None and item < len(popularity) else 0
            out.append(f"popular: {count} people interacted with it" if count
                       else "close to the content you chose")
            continue
        order = np.argsort(-contrib[n])[:MAX_REASONS]
        top = [int(hist[j]) for j in order if contrib[n, j] > 0]
        share = contrib[n, order].clip(min=0).sum() / max(contrib[n].clip(min=0).sum(), 1e-9)
        text = "because you liked " + " and ".join(title(j) for j in top) + f" ({share:.0%} of the score)"
        theirs = {g for j in top for g in genres(j)}
        shared = [g for g in genres(int(item)) if g in theirs][:3]
        if shared:
            text += "; shares " + ", ".join(shared)
        out.append(text)
    return out
