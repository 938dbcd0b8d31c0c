"""One contract suite for every model: batch equals single, exclusions, candidates, unknown
users with a history, cold items (content-aware models), save/load equality without pickle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from avrec.data import Dataset
from avrec.models.base import Recommender, TrainData
from avrec.models.registry import create_model
from tests.conftest import piano_action_items

FAST = ["popularity", "itemknn", "ease", "sparse-ease", "als", "bpr", "bias", "rating", "vae"]
PRIVATE = ["dp-ease", "dp-popularity", "dp-two-tower"]
CONTENT = ["content", "hybrid", "hybrid-ltr", "two-tower", "sequential"]
#: small settings so the neural models train in seconds on the synthetic data
SMALL = {
    "hybrid-ltr": {
        "hybrid": {"query_encoder": None},
        "n_candidates": 20,
        "n_estimators": 30,
        "min_child_samples": 5,
        "validation_fraction": 0.25,
    },
    "two-tower": {"dim": 32, "max_epochs": 12, "samples_per_user": 4, "patience": 12},
    "sequential": {"dim": 32, "max_epochs": 15, "patience": 15, "layers": 1, "batch_size": 16},
    "vae": {"hidden": 32, "epochs": 40},
    "dp-ease": {"epsilon": 8.0, "noise_seed": 0, "count_share": 0.3, "popularity_weight": 0.1},
    "dp-popularity": {"epsilon": 8.0, "noise_seed": 0},
    "dp-two-tower": {"epsilon": 8.0, "noise_seed": 0, "dim": 16, "epochs": 5, "batch_size": 16},
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n_items = 40
    cold = pd.DataFrame(
        {
            "item_id": ["cold-piano", "cold-action"],
            "title": ["Calm piano nocturne", "Loud action explosion"],
            "genres": ["Music|Ambient", "Action|Thriller"],
        }
    )
    items = pd.concat([piano_action_items(n_items), cold], ignore_index=True)
    rows = []
    for u in range(60):
        liked = [i for i in range(n_items) if i % 2 == u % 2]
        for t, i in enumerate(rng.choice(liked, size=8, replace=False)):
            rows.append((f"u{u}", f"i{i}", float(rng.integers(3, 6)), 1_000_000 + t))
    return TrainData.from_dataset(
        Dataset(items, pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]))
    )


def _config(name):
    if name in SMALL:
        return SMALL[name]
    return {"query_encoder": None} if name in CONTENT else {}


@pytest.fixture(scope="module")
def fitted(data):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = create_model(name, _config(name)).fit(data)
        return cache[name]

    return get


@pytest.mark.parametrize("name", FAST + CONTENT + PRIVATE)
def test_batch_equals_single(name, fitted):
    model = fitted(name)
    users = ["u0", "u1", "u7"]
    batch = model.recommend(users, k=5)
    for n, u in enumerate(users):
        single = model.recommend([u], k=5)
        assert single.items[0] == batch.items[n]
        np.testing.assert_allclose(single.scores[0], batch.scores[n], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", FAST + CONTENT + PRIVATE)
def test_exclusions_candidates_and_unknown_users(name, fitted, data):
    model = fitted(name)
    seen = set(data.interactions.query("user_id == 'u0'")["item_id"])
    assert not seen & set(model.recommend(["u0"], k=10).items[0])
    assert seen & set(model.recommend(["u0"], k=42, exclude_seen=False).items[0])
    cands = ["i1", "i2", "i3"]
    assert set(model.recommend(["u0"], k=5, candidates=[cands]).items[0]) <= set(cands)
    new = model.recommend(["stranger"], k=5, histories=[["i1", "i3", "i5"]])
    assert len(new.items[0]) == 5 and not {"i1", "i3", "i5"} & set(new.items[0])


@pytest.mark.parametrize(
    "name", ["itemknn", "ease", "als", "content", "hybrid", "hybrid-ltr", "two-tower"]
)
def test_history_moves_recommendations_to_its_group(name, fitted):
    model = fitted(name)
    recs = model.recommend(["stranger"], k=5, histories=[["i1", "i3", "i5", "i7"]]).items[0]
    odd = [r for r in recs if r.startswith("i") and int(r[1:]) % 2 == 1]
    assert len(odd) >= 4, recs


@pytest.mark.parametrize("name", CONTENT)
def test_content_aware_models_rank_cold_items(name, fitted):
    model = fitted(name)
    recs = model.recommend(
        ["stranger"],
        k=1,
        histories=[["i1", "i3", "i5"]],
        candidates=[["cold-piano", "cold-action"]],
    )
    assert recs.items[0] == ["cold-piano"]
    recs = model.recommend(
        ["stranger"],
        k=1,
        histories=[["i0", "i2", "i4"]],
        candidates=[["cold-piano", "cold-action"]],
    )
    assert recs.items[0] == ["cold-action"]


@pytest.mark.parametrize("name", FAST + CONTENT + PRIVATE)
def test_save_load_equality(name, fitted, tmp_path):
    model = fitted(name)
    model.save(tmp_path / name)
    assert not list((tmp_path / name).glob("*.pkl"))
    loaded = Recommender.load(tmp_path / name)
    assert type(loaded) is type(model)
    a = model.recommend(["u0", "stranger"], k=5, histories=[None, ["i2", "i4"]])
    b = loaded.recommend(["u0", "stranger"], k=5, histories=[None, ["i2", "i4"]])
    assert a.items == b.items
    np.testing.assert_allclose(np.concatenate(a.scores), np.concatenate(b.scores), rtol=1e-5)


@pytest.mark.parametrize(
    "name", ["ease", "itemknn", "als", "bpr", "content", "hybrid", "hybrid-ltr", "two-tower"]
)
def test_explanations_name_contributing_history_items(name, fitted):
    model = fitted(name)
    recs = model.recommend(["stranger"], k=3, histories=[["i1", "i3"]], explain=True)
    assert len(recs.explanations[0]) == len(recs.items[0])
    for text in recs.explanations[0]:
        assert "because you liked" in text and ("piece 1" in text or "piece 3" in text)


@pytest.mark.parametrize("name", FAST + CONTENT + PRIVATE)
def test_batched_explanations_equal_one_request_at_a_time(name, fitted):
    """``recommend`` explains a whole batch at once (models share the work across rows);
    each row must read exactly as when that request comes alone."""
    model = fitted(name)
    users = ["u0", "u1", "stranger", "u3", "nobody"]
    histories = [None, None, ["i1", "i3", "i5"], ["i2"], []]
    batch = model.recommend(users, k=4, histories=histories, explain=True)
    index = model.user_vocab.lookup(users)
    rows = model.history_matrix(index, histories)
    for n, (user, history) in enumerate(zip(users, histories, strict=True)):
        one = model.recommend([user], k=4, histories=[history], explain=True)
        assert one.items[0] == batch.items[n]
        assert one.explanations[0] == batch.explanations[n]
        # and as the per-request path (``explain`` from ``contributions``) words it
        items = model.item_vocab.lookup(batch.items[n])
        assert model.explain(rows[n], items, None, int(index[n])) == batch.explanations[n]


@pytest.mark.parametrize("name", ["als", "bpr"])
def test_factorization_contributions_add_up_to_the_folded_in_score(name, fitted):
    model = fitted(name)
    items = np.arange(len(model.item_vocab))
    rows = model.history_matrix(np.array([-1]), [["i1", "i3", "i8"]])
    terms = model.contributions(rows[0], items)
    assert terms.shape == (len(items), 3)
    np.testing.assert_allclose(
        terms.sum(axis=1), model.score(np.array([-1]), rows)[0], rtol=1e-4, atol=1e-5
    )
    own = model.history_matrix(np.array([0]), [None])  # training user u0, own history
    if name == "bpr":  # learned by gradient steps: no split by history item
        assert model.contributions(own[0], items, 0) is None
        text = model.recommend(["u0"], k=2, explain=True).explanations[0]
        assert all(
            t.startswith("ranked by the taste factors learned from your history") for t in text
        )
    else:  # the user step with the final item factors: the stored factors' score, closely
        total = model.contributions(own[0], items, 0).sum(axis=1)
        assert np.corrcoef(total, model.score(np.array([0]), own)[0])[0, 1] > 0.99


def test_bias_predicts_ratings(fitted, data):
    model = fitted("bias")
    pred = model.predict(["u0", "nobody"], ["i0", "unknown"])
    assert np.all(np.isfinite(pred)) and 3 <= pred[1] <= 5


def test_rating_model_beats_bias_on_held_out_ratings():
    from avrec.evaluation.runner import evaluate

    rng = np.random.default_rng(1)
    n_users, n_items = 80, 50
    taste = rng.normal(size=(n_users, 3))
    kind = rng.normal(size=(n_items, 3))
    rows = []
    for u in range(n_users):
        for i in rng.choice(n_items, 25, replace=False):
            r = np.clip(np.round(3 + taste[u] @ kind[i] + rng.normal(0, 0.3)), 1, 5)
            rows.append((f"u{u}", f"i{i}", r, 1_000 + i))
    ds = Dataset(
        pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)]}),
        pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]),
    )
    runs = evaluate(ds, "kfold", ["bias", "rating"], ks=[10], log=lambda _: None)
    mae = {m: np.mean([r.metrics["mae"] for r in runs if r.model == m]) for m in ("bias", "rating")}
    assert mae["rating"] < 0.8 * mae["bias"], mae


def test_ltr_chooses_als_regularization_once(data, monkeypatch):
    """hybrid-ltr fits its parts twice (on its training view, then on all the data); ALS's
    regularization is chosen on validation data in the first fit only and reused."""
    from avrec.models.baselines.factorization import ALS

    chosen = []
    select = ALS._select

    def counting(self, d):
        chosen.append(select(self, d))
        return chosen[-1]

    monkeypatch.setattr(ALS, "_select", counting)
    model = create_model("hybrid-ltr", SMALL["hybrid-ltr"]).fit(data)
    assert len(chosen) == 1
    assert model.parts["als"].regularization_ == chosen[0]
    # the final part is configured with the choice (Recommender.settled_config)
    assert model.parts["als"].config.regularization == chosen[0]


@pytest.mark.parametrize("name", ["two-tower", "sequential"])
def test_one_thread_fits_repeat_exactly(name, data):
    """``threads=1``: two fits with one seed give the same weights, and torch's own thread
    count is back as it was afterwards."""
    import torch

    before = torch.get_num_threads()
    cfg = {**SMALL[name], "max_epochs": 3, "patience": 3, "threads": 1}
    first, second = (create_model(name, cfg).fit(data) for _ in range(2))
    assert torch.get_num_threads() == before
    a, b = first.net.state_dict(), second.net.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("name", ["two-tower", "sequential"])
def test_sampled_softmax_above_full_softmax_max(name, data):
    """Catalogs above ``full_softmax_max`` train against sampled negatives; the model still
    trains end to end and keeps the two taste groups apart (a history of action items, the
    even ones, ranks action items first)."""
    cfg = {**SMALL[name], "full_softmax_max": 10, "sampled_negatives": 12, "threads": 1}
    model = create_model(name, cfg).fit(data)
    action = ["i0", "i2", "i4", "i6", "i8"]
    recs = model.recommend([None], k=5, histories=[action]).items[0]
    assert sum(int(i[1:]) % 2 == 0 for i in recs if i.startswith("i")) >= 4, recs
