"""The readable user profile ("portrait"): what the user's history shows, with weights.
Genres, kinds and languages from the catalog; moods, visual and sound labels from the items'
stored understanding (where the encoders have run)."""

from __future__ import annotations

from collections import Counter, defaultdict

import pandas as pd
from sqlalchemy import Engine, select

from avrec.data.dataset import split_multi
from avrec.data.vocab import Vocabulary
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


def _catalog_language(catalog: pd.DataFrame, position: Vocabulary, item: str) -> bool:
    pos = position.get(item)
    if pos is None or "language" not in catalog:
        return False
    value = catalog["language"].iat[pos]
    return isinstance(value, str) and bool(value)


def user_profile(
    state: UserState, catalog: pd.DataFrame, position: Vocabulary, engine: Engine | None = None
) -> dict:
    facets: dict[str, Counter] = defaultdict(Counter)
    for item, weight in state.weights.items():
        pos = position.get(item)
        if pos is None:
            continue
        row = catalog.iloc[pos]
        for g in split_multi(row.get("genres")):
            facets["genres"][g] += weight
        for col, facet in (("kind", "kinds"), ("language", "languages")):
            value = row.get(col)
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
                    if _catalog_language(catalog, position, item):
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
