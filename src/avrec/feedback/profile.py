"""The readable user profile ("portrait"): what the user's history shows, with weights.
Genres, kinds and languages from the catalog; moods, visual and sound labels from the items'
stored understanding (where the encoders have run)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Engine, select

from avrec.feedback.online import UserState
from avrec.storage import tables as t

TOP = 8
#: keys of ``item_understanding.attributes`` (as the encoders write them) -> profile facet
UNDERSTANDING_KEYS = {
    "moods": "moods",
    "visual_labels": "visual",
    "sound_labels": "sound",
    "labels": "visual",
    "mood": "moods",
    "language": "languages",
}


def attribute_words(value) -> list[str]:
    """An understanding attribute as words: a string, or a list of strings/``{label}`` dicts."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list | tuple):
        return [str(v.get("label")) if isinstance(v, dict) else str(v) for v in value if v]
    return []


def _top(counter: Counter) -> list[dict]:
    total = sum(v for v in counter.values() if v > 0) or 1.0
    return [
        {"name": k, "weight": round(v / total, 3)} for k, v in counter.most_common(TOP) if v > 0
    ]


class ItemFacets(Protocol):
    """What the profile reads of an item (the service's catalog gives it by item id)."""

    genres: list[str]
    kind: str | None
    language: str | None


def _catalog_language(facets: ItemFacets | None) -> bool:
    return facets is not None and isinstance(facets.language, str) and bool(facets.language)


def user_profile(
    state: UserState,
    item_facets: Callable[[str], ItemFacets | None],
    engine: Engine | None = None,
) -> dict:
    """``item_facets``: an item id's genres, kind and language (None for an unknown item)."""
    facets: dict[str, Counter] = defaultdict(Counter)
    for item, weight in state.weights.items():
        row = item_facets(item)
        if row is None:
            continue
        for g in row.genres:
            facets["genres"][g] += weight
        for value, facet in ((row.kind, "kinds"), (row.language, "languages")):
            if isinstance(value, str) and value:
                facets[facet][value] += weight
    if engine is not None and state.weights:
        items = list(state.weights)[:2_000]
        with engine.connect() as conn:
            rows = conn.execute(
                select(t.item_understanding.c.item_id, t.item_understanding.c.attributes).where(
                    t.item_understanding.c.item_id.in_(items)
                )
            ).all()
        seen_language: set[str] = set()
        for item, attrs in rows:
            for key, facet in UNDERSTANDING_KEYS.items():
                if facet == "languages" and item in seen_language:
                    continue  # the catalog column already counted it, or another modality did
                words = attribute_words((attrs or {}).get(key))
                if facet == "languages" and words:
                    seen_language.add(item)
                    if _catalog_language(item_facets(item)):
                        continue
                gain = state.weights.get(item, 0.0)
                for word in words:
                    facets[facet][word] += gain  # type: ignore[assignment]  # float counts
    return {
        "history_size": len(state.history),
        "events": state.events,
        "disliked_or_skipped": len(state.negatives),
        **{name: _top(counter) for name, counter in sorted(facets.items())},
    }
