"""Persisting understanding on SQLite and PostgreSQL: artifacts, item_understanding rows,
vectors read back aligned, re-saving replaces rows instead of duplicating them."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select

from avrec.encoders.understand import ModalityResult


def _result(n: int, ok: list[int], failed: dict[int, str]) -> ModalityResult:
    res = ModalityResult.empty("image", "image", "efficientnet-lite0-onnx", n, 4)
    for r in ok:
        vec = np.zeros(4, np.float32)
        vec[r % 4] = 1.0
        res.ok(r, vec, {"visual_labels": [f"label{r}"]}, f"hash{r}")
    for r, reason in failed.items():
        res.fail(r, reason)
    return res


def test_save_describe_and_load_vectors(db_url, avrec_home, synthetic_dataset):
    from avrec.encoders.store import describe, load_vectors, save_understanding
    from avrec.storage import tables as t
    from avrec.storage.db import get_engine
    from avrec.storage.ingest import ingest

    engine = get_engine(db_url)
    ingest(synthetic_dataset, engine)
    ids = list(synthetic_dataset.items["item_id"][:5])
    res = _result(5, ok=[0, 2, 3], failed={1: "i1.jpg: not a readable image"})
    summary = save_understanding(engine, ids, {"image": res})
    assert summary == {"image": {"ok": 3, "failed": 1, "missing": 1}}
    again = save_understanding(engine, ids, {"image": res})  # idempotent
    assert again == summary
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.item_understanding)).scalar() == 5
        assert conn.execute(select(func.count()).select_from(t.artifacts)).scalar() == 1
    info = describe(engine, ids[1])
    assert info["understanding"]["image"]["status"] == "failed"
    assert "not a readable image" in info["understanding"]["image"]["reason"]
    assert describe(engine, ids[0])["understanding"]["image"]["attributes"] == {
        "visual_labels": ["label0"]
    }
    assert describe(engine, "no-such-item") is None
    order = [ids[3], "unknown", ids[0], ids[1]]
    vecs, present = load_vectors(engine, "image", order)
    assert present.tolist() == [True, False, True, False]
    assert np.array_equal(vecs[0], res.vectors[3]) and np.array_equal(vecs[2], res.vectors[0])
    assert not vecs[1].any()
