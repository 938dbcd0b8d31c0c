"""The hybrid's scores of a few items (models.hybrid.subsets): equal to the whole catalog's
where the moment sample covers the catalog, close where it does not, used by the cascade only
for the parts that allow it, and rebuilt after items are added."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from avrec.index.cascade import Cascade, CascadeConfig, use_cascade
from avrec.models.hybrid import Hybrid, subsets
from tests.unit.test_models_hybrid_parts import N_ITEMS, _data

#: what a large catalog's hybrid keeps: a sparse backbone, no VAE, cold ranker or first-items map
LARGE = {
    "backbone": {"kind": "sparse", "neighbors": 12},
    "vae": {"weight": 0.0},
    "cold_ranker": {"max_items": 0},
    "short_history": {"prefix": 0},
    "content": {"query_encoder": None},
}


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(scope="module")
def model(data):
    return Hybrid(LARGE).fit(data)


def _histories(model, n_items):
    """Training rows (long histories) and given ones of 0, 1 and 3 items (the prior's)."""
    train = model.history_matrix(np.arange(5))
    given = sp.csr_matrix((np.ones(4, np.float32), [4, 7, 9, 11], [0, 0, 1, 4]), shape=(3, n_items))
    users = np.concatenate([np.arange(5), [-1, -1, -1]])
    return users, sp.vstack([sp.csr_matrix(train, dtype=np.float32), given]).tocsr()


def _picked(model, users, hist, items, queries=None):
    full = model.score(users, hist, queries)
    return np.where(items >= 0, np.take_along_axis(full, np.maximum(items, 0), 1), 0.0)


def test_scores_of_a_few_items_equal_the_whole_catalogs(model):
    assert model.cheap_subsets()
    users, hist = _histories(model, N_ITEMS)
    items = np.random.default_rng(0).integers(-1, N_ITEMS, (len(users), 9))
    got = model.score_items(users, hist, items)
    np.testing.assert_allclose(got, _picked(model, users, hist, items), rtol=1e-4, atol=1e-5)


def test_a_sample_smaller_than_the_catalog_keeps_collab_exact_and_the_rest_close(
    model, monkeypatch
):
    monkeypatch.setattr(subsets, "MOMENT_SAMPLE", 30)
    model.__dict__.pop("_subset_state", None)
    users, hist = _histories(model, N_ITEMS)
    items = np.tile(np.arange(N_ITEMS), (len(users), 1))
    assert len(model.subset_state().sample) == 30
    got = model.score_items(users, hist, items)
    want = _picked(model, users, hist, items)
    for r in range(len(users)):
        assert np.corrcoef(got[r], want[r])[0, 1] > 0.95
    # without the content and prior parts nothing is estimated
    bare = Hybrid({**LARGE, "content_weight": 0.0, "short_history": {"prior_weight": 0.0}})
    bare.fit(_data())
    np.testing.assert_allclose(
        bare.score_items(users, hist, items), _picked(bare, users, hist, items), rtol=1e-5
    )
    model.__dict__.pop("_subset_state", None)


def test_requests_blend_the_same_way(data):
    m = Hybrid({**LARGE, "content": {"query_encoder": "text-en"}, "request": {"learned": False}})
    m.fit(data)
    assert m.request_rank is None and m.cheap_subsets()
    users, hist = _histories(m, N_ITEMS)
    queries = ["an action film", None, "drama", "", "action", "drama please", None, "film"]
    items = np.random.default_rng(1).integers(0, N_ITEMS, (len(users), 12))
    got = m.score_items(users, hist, items, queries)
    np.testing.assert_allclose(got, _picked(m, users, hist, items, queries), rtol=1e-4, atol=1e-4)


def test_parts_that_need_the_catalog_score_it_whole(data, model):
    dense = Hybrid({**LARGE, "backbone": {"kind": "ease"}}).fit(data)
    with_vae = Hybrid({**LARGE, "vae": {"settings": {"epochs": 2, "hidden": 8}}}).fit(data)
    for m in (dense, with_vae):
        assert not m.cheap_subsets()
        assert not use_cascade(m, CascadeConfig(min_items=0))
        users, hist = _histories(m, N_ITEMS)
        items = np.tile(np.arange(5), (len(users), 1))
        np.testing.assert_array_equal(
            m.score_items(users, hist, items), _picked(m, users, hist, items)
        )
    assert use_cascade(model, CascadeConfig(min_items=0))


def test_the_cascade_ranks_like_the_full_ranking_when_it_covers_the_catalog(model):
    cas = Cascade(model, {"neighbours": N_ITEMS, "popular": N_ITEMS, "ann": "exact"})
    users = [f"u{n}" for n in range(10)]
    got = cas.recommend(users, k=5)
    want = model.recommend(users, k=5)
    assert got.items == want.items


def test_added_items_rebuild_the_state(data):
    m = Hybrid(LARGE).fit(data)
    users, hist = _histories(m, N_ITEMS)
    before = m.subset_state()
    new = pd.DataFrame({"item_id": ["new1"], "title": ["Film new"], "genres": ["Drama"]})
    m.add_items(new)
    assert m.subset_state() is not before
    n = N_ITEMS + 1
    hist = sp.csr_matrix((hist.data, hist.indices, hist.indptr), shape=(hist.shape[0], n))
    items = np.tile(np.arange(n), (len(users), 1))
    np.testing.assert_allclose(
        m.score_items(users, hist, items), _picked(m, users, hist, items), rtol=1e-4, atol=1e-5
    )


def test_auto_retrieval_takes_the_cascade_before_the_vector_index():
    """From 100,000 items a model with content vectors goes through the index path, unless it
    ranks the cascade's candidates cheaply (then its own scores decide)."""
    from types import SimpleNamespace

    from avrec.service.settings import ServiceSettings
    from avrec.service.state import ServiceState

    def state(cheap: bool, n: int = 200_000, retrieval: str = "auto"):
        model = SimpleNamespace(
            cheap_subsets=lambda: cheap, fitted_parts=lambda: (None, range(n), None)
        )
        items = type("Items", (), {"index": object(), "__len__": lambda self: n})()
        fake = SimpleNamespace(
            items=items,
            settings=ServiceSettings(model_dir="m", retrieval=retrieval),
            model=model,
        )
        return ServiceState.use_index.fget(fake)

    assert state(cheap=False)
    assert not state(cheap=True)
    assert not state(cheap=False, n=50_000)
    assert state(cheap=True, retrieval="index")
