"""``avrec encode`` in chunks: the catalog is understood ``chunk_items`` items at a time, each
chunk's vectors and understanding rows written to the store before the next chunks are taken,
so memory does not grow with the catalog. Chunks run as Dask tasks inside a
:func:`avrec.cluster.dask_client` block (a window of chunks at a time, results saved in catalog
order), else in this process; both write the same artifacts, byte for byte.

What could differ between chunks is settled for the whole catalog first: the text encoder
("auto" looks at every item's language, from its own fields and text, not at OCR text or
transcripts found on the way) and each mood's standardisation (over the catalog's texts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from avrec.cluster import active_client, map_chunks
from avrec.encoders.mood import MoodStats
from avrec.encoders.understand import (
    MODALITIES,
    CatalogUnderstanding,
    catalog_mood_stats,
    encode_catalog,
)

#: items per chunk (a chunk's vectors, media and texts are what one task holds)
CHUNK_ITEMS = 5_000


@dataclass(frozen=True)
class EncodeSettings:
    """What every chunk is encoded with (sent once to every worker)."""

    modalities: tuple[str, ...] = MODALITIES
    root: str | None = None
    text_encoder: str = "auto"
    ocr_images: bool = False
    moods: bool = True
    #: each mood's standardisation, settled over the whole catalog
    mood_stats: MoodStats | None = None


@dataclass
class EncodeTotals:
    """Per modality ok / failed / missing counts over all chunks, and the first failures."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    n_failures: int = 0
    chunks: int = 0

    def add(self, summary: dict[str, dict[str, int]], failures: list) -> None:
        for modality, counts in summary.items():
            into = self.counts.setdefault(modality, {"ok": 0, "failed": 0, "missing": 0})
            for key, n in counts.items():
                into[key] = into.get(key, 0) + n
        self.failures.extend(failures[: max(0, 20 - len(self.failures))])
        self.n_failures += len(failures)
        self.chunks += 1


def catalog_text_encoder(items: pd.DataFrame, requested: str) -> str:
    """The text encoder for the whole catalog (``requested`` unless "auto"), from each item's
    language as :func:`~avrec.encoders.understand.understand_text` reads it."""
    if requested != "auto":
        return requested
    from avrec.encoders.itemtext import item_text
    from avrec.encoders.language import choose_text_encoder, detect_language

    langs: list[str | None] = []
    for row in _rows(items):
        text = item_text(row)
        if not text.strip():
            continue
        own = f"{row.get('title') or ''} {row.get('description') or ''}"
        langs.append(row.get("language") or detect_language(own) or detect_language(text))
        langs.append(detect_language(text))
    return choose_text_encoder(langs, "auto")


def _rows(items: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        for row in items.to_dict("records")
    ]


def encode_chunk(items: pd.DataFrame, settings: EncodeSettings) -> CatalogUnderstanding:
    """One chunk's understanding (a Dask task, or a step of the in-process loop)."""
    return encode_catalog(
        items.reset_index(drop=True),
        settings.modalities,
        Path(settings.root) if settings.root else None,
        progress=False,
        text_encoder=settings.text_encoder,
        ocr_images=settings.ocr_images,
        moods=settings.moods,
        mood_stats=settings.mood_stats,
    )


def encode_to_store(
    engine: Engine,
    items: pd.DataFrame,
    settings: EncodeSettings,
    *,
    chunk_items: int = CHUNK_ITEMS,
    on_chunk: Callable[[int], None] | None = None,
) -> EncodeTotals:
    """Understand ``items`` chunk by chunk and store each chunk (vectors artifact per modality
    and chunk, understanding rows); ``on_chunk(n_items)`` after each chunk is stored."""
    from avrec.encoders.store import save_understanding

    if chunk_items < 1:
        raise ValueError(f"chunk_items must be at least 1, got {chunk_items}")
    if "text" in settings.modalities:
        settings = replace(
            settings, text_encoder=catalog_text_encoder(items, settings.text_encoder)
        )
        if settings.moods and settings.mood_stats is None:
            stats = catalog_mood_stats(_rows(items), settings.text_encoder)
            settings = replace(settings, mood_stats=stats)
    chunks = [items.iloc[a : a + chunk_items] for a in range(0, len(items), chunk_items)]
    client = active_client()
    # a window of chunks in flight: every worker busy, at most two chunks' results each held
    window = 2 * max(1, len(client.scheduler_info()["workers"])) if client is not None else 1
    totals = EncodeTotals()
    for start in range(0, len(chunks), window):
        for result in map_chunks(encode_chunk, chunks[start : start + window], settings):
            summary = save_understanding(engine, result.item_ids, result.results)
            totals.add(summary, result.failures)
            if on_chunk is not None:
                on_chunk(len(result.item_ids))
    return totals
