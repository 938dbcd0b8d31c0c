"""The cold-item ranker (models.coldrank) and its use inside the hybrid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from avrec.data import Dataset
from avrec.models.base import Recommender, TrainData
from avrec.models.hybrid import Hybrid, HybridConfig
from avrec.models.hybrid.coldrank import hide_items, people_popularity

N_ITEMS, COLD = 80, list(range(64, 80))
#: a director whose films nearly everybody in the film's taste group watches, warm and cold
STAR = set(range(12)) | {64, 65, 66, 67}


def _dataset() -> TrainData:
    rng = np.random.default_rng(0)
    items = pd.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(N_ITEMS)],
            "title": [f"Film {n}" for n in range(N_ITEMS)],
            "genres": ["Drama" if n % 2 else "Action" for n in range(N_ITEMS)],
            "tags": [
                "director:Star" if n in STAR else f"director:Other{n // 2}" for n in range(N_ITEMS)
            ],
        }
    )
    rows = []
    for u in range(120):
        for n in range(N_ITEMS):
            if n % 2 == u % 2 and rng.random() < (0.85 if n in STAR else 0.15):
                rows.append((f"u{u}", f"i{n}", 4.0, 1_000_000 + n))
    full = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    train = full[~full["item_id"].isin({f"i{n}" for n in COLD})]
    # text vectors: the taste group plus noise, nothing about the director
    text = rng.normal(size=(N_ITEMS, 384)).astype(np.float32) * 0.3
    text[:, 0] += np.where(np.arange(N_ITEMS) % 2, 1.0, -1.0)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    return TrainData.from_dataset(Dataset(items, train), {"text": text})


@pytest.fixture(scope="module")
def fitted():
    data = _dataset()
    # no side information or content ridge map: the director reaches the cold films only
    # through the ranker's features (shared people, people's popularity)
    config = HybridConfig(
        query_encoder=None, cold_rank_folds=4, cold_rank_trees=60, side_weight=0.0, cold_ridge=0.0
    )
    return Hybrid(config).fit(data), data


def test_people_popularity_leaves_the_item_itself_out():
    items = pd.DataFrame(
        {"item_id": ["a", "b", "c"], "tags": ["director:X", "director:X", "director:Y|cast:Z"]}
    )
    counts = np.array([9.0, 0.0, 3.0])
    warm = counts > 0
    pp = people_popularity(items, counts, warm)
    # a: its only other X film (b) is cold -> unknown; b: a's log(10); c: no shared people
    assert np.isnan(pp[0, 0]) and pp[0, 2] == 0
    assert pp[1, 0] == pytest.approx(np.log(10.0)) and pp[1, 2] == 1
    assert np.isnan(pp[2, 0])


def test_hide_items_removes_only_their_interactions(fitted):
    _, data = fitted
    hidden = hide_items(data, np.array([0, 1]))
    assert hidden.matrix[:, [0, 1]].nnz == 0
    assert hidden.matrix.nnz == data.matrix.nnz - data.matrix[:, [0, 1]].nnz


def test_ranker_puts_the_popular_directors_cold_films_first(fitted):
    model, _ = fitted
    assert model.cold_ranker is not None
    cold_ids = [f"i{n}" for n in COLD]
    # a user of the even group: their group's two cold Star films should lead the cold items
    recs = model.recommend(["u0", "u1"], k=2, candidates=[cold_ids] * 2)
    assert [set(r) for r in recs.items] == [{"i64", "i66"}, {"i65", "i67"}]
    plain = Hybrid(model.config.with_parts(cold_ranker={"share": 0.0})).fit(_dataset())
    assert plain.cold_ranker is None
    recs = plain.recommend(["u0", "u1"], k=2, candidates=[cold_ids] * 2)
    assert [set(r) for r in recs.items] != [{"i64", "i66"}, {"i65", "i67"}]


def test_ranker_survives_save_and_load(fitted, tmp_path):
    model, _ = fitted
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.cold_ranker is not None
    cold_ids = [[f"i{n}" for n in COLD]] * 2
    a = model.recommend(["u0", "u1"], k=8, candidates=cold_ids)
    b = loaded.recommend(["u0", "u1"], k=8, candidates=cold_ids)
    assert a.items == b.items
    np.testing.assert_allclose(np.concatenate(a.scores), np.concatenate(b.scores), rtol=1e-5)


def test_cold_items_are_explained_by_the_rankers_evidence(fitted):
    model, _ = fitted
    cold_ids = [f"i{n}" for n in COLD]
    recs = model.recommend(
        ["stranger"], k=2, histories=[["i0", "i2", "i4"]], candidates=[cold_ids], explain=True
    )
    for item, text in zip(recs.items[0], recs.explanations[0], strict=True):
        assert text.startswith("new item (no interactions yet): "), (item, text)
        # each reason names its evidence: a history film, a genre, a year or the cast
        assert any(w in text for w in ("Film 0", "Film 2", "Film 4", "Action", "widely watched"))
    warm = model.recommend(["u0"], k=1, explain=True)
    assert warm.explanations[0][0].startswith("because you liked")
