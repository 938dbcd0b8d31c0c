"""`avrec encode` in chunks on a 2-worker LocalCluster writes the same vector files, byte for
byte, as in this process (real MiniLM text encoder, chunks of 4 items over 11 items)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

TITLES = [
    "Toy Story (1995)",
    "A quiet piano piece for studying",
    "Heat (1995)",
    "Jazz at midnight",
    "News of the week",
    "The Matrix (1999)",
    "Ambient rain sounds",
    "Cooking pasta at home",
    "Rock anthems of the eighties",
    "",  # no text: missing, not failed
    "A documentary about whales",
]


def _encode_once(home, tmp_path, monkeypatch, workers: int | None) -> dict[str, bytes]:
    from avrec.cluster import dask_client
    from avrec.data.dataset import Dataset
    from avrec.encoders.batches import EncodeSettings, encode_to_store
    from avrec.encoders.store import load_vectors
    from avrec.storage.db import get_engine
    from avrec.storage.ingest import ingest
    from avrec.storage.repository import load_from_db

    home.mkdir()
    monkeypatch.setenv("AVREC_HOME", str(home))  # workers start after this: they inherit it
    items = pd.DataFrame(
        {"item_id": [f"i{n}" for n in range(len(TITLES))], "title": TITLES, "genres": "Drama"}
    )
    items.loc[9, "genres"] = None
    engine = get_engine(f"sqlite:///{home / 'avrec.db'}")
    ingest(Dataset(items, pd.DataFrame({"user_id": [], "item_id": []})), engine)
    catalog = load_from_db(engine).items
    settings = EncodeSettings(("text",), None, "text-en", moods=False)
    with dask_client("local" if workers else None, workers):
        totals = encode_to_store(engine, catalog, settings, chunk_items=4)
    assert totals.chunks == 3
    assert totals.counts["text"] == {"ok": 10, "failed": 0, "missing": 1}
    vectors, present = load_vectors(engine, "text", list(items["item_id"]))
    assert present.sum() == 10 and not present[9]
    assert np.allclose(np.linalg.norm(vectors[present], axis=1), 1.0, atol=1e-5)
    folder = home / "artifacts" / "embeddings"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.npz"))}


@pytest.mark.timeout(300)
def test_encode_on_workers_writes_identical_vectors(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    here = _encode_once(tmp_path / "a", tmp_path, monkeypatch, None)
    there = _encode_once(tmp_path / "b", tmp_path, monkeypatch, 2)
    assert len(here) == 3  # one vectors file per chunk
    assert here.keys() == there.keys()
    for name in here:
        assert here[name] == there[name], name
