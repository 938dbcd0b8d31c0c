"""`avrec encode` in chunks gives every item the moods the whole catalog would: each mood is
standardised over the catalog's texts once, not per chunk (real MiniLM and e5 encoders)."""

from __future__ import annotations

import numpy as np
import pandas as pd

STORIES = [
    "a gentle, peaceful walk by a quiet lake at dawn",
    "a hilarious comedy of errors at a wedding",
    "a tragic story of loss and grief after the war",
    "a terrifying haunted house where nobody survives",
    "an explosive action chase across the rooftops",
    "two strangers fall in love on a train through Europe",
    "a dark and violent tale of revenge in the underworld",
    "an inspiring true story of a coach and his team",
    "a tense standoff in a bank robbery gone wrong",
    "a cheerful musical about friends on summer holiday",
    "a cooking show about pasta and sauces",
    "a documentary about whales in the Arctic",
]


def _catalog(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(n)],
            "title": [f"Film {k}" for k in range(n)],
            "description": [
                f"{STORIES[k % len(STORIES)]}, part {k // len(STORIES) + 1}" for k in range(n)
            ],
            "genres": "Drama",
        }
    )


def test_chunks_get_the_whole_catalogs_moods(tmp_path, monkeypatch):
    monkeypatch.setenv("AVREC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from avrec.data.dataset import Dataset
    from avrec.encoders.batches import EncodeSettings, encode_to_store
    from avrec.encoders.store import describe
    from avrec.encoders.understand import encode_catalog
    from avrec.storage.db import get_engine
    from avrec.storage.ingest import ingest
    from avrec.storage.repository import load_from_db

    items = _catalog(60)
    whole = encode_catalog(items, ("text",), None, text_encoder="text-en")
    engine = get_engine(f"sqlite:///{tmp_path / 'avrec.db'}")
    ingest(Dataset(items, pd.DataFrame({"user_id": [], "item_id": []})), engine)
    catalog = load_from_db(engine).items
    # chunks of 25: the last one has 10 items, fewer than a catalog needs for its own statistics
    totals = encode_to_store(
        engine, catalog, EncodeSettings(("text",), None, "text-en"), chunk_items=25
    )
    assert totals.chunks == 3
    chunked = {
        i: describe(engine, i)["understanding"]["text"]["attributes"]["moods"]
        for i in items["item_id"]
    }
    expected = {i: whole.attributes(i)["text"]["moods"] for i in items["item_id"]}
    assert chunked == expected
    assert sum(bool(m) for m in expected.values()) >= 30  # moods were found, not all empty


def test_mood_sample_is_seeded_and_bounded():
    from avrec.encoders.mood import MOOD_SAMPLE, mood_sample

    assert np.array_equal(mood_sample(10), np.arange(10))
    big = mood_sample(MOOD_SAMPLE * 3)
    assert len(big) == MOOD_SAMPLE and np.all(np.diff(big) > 0)
    assert np.array_equal(big, mood_sample(MOOD_SAMPLE * 3))
