"""Two-tower scoring: the user vector pools the most recent ``score_history`` items (not only
the ``max_history`` a training example samples), in bounded chunks, and the explanation terms
add up to the score for such long histories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from avrec.data import Dataset
from avrec.fusion.features import item_features
from avrec.models.base import TrainData
from avrec.models.neural import two_tower
from avrec.models.registry import create_model
from tests.conftest import piano_action_items


def parity_data(n_users: int, per_user: int, seed: int, n_items: int = 40) -> TrainData:
    """Each user likes ``per_user`` items of their own parity (even users even items)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        liked = [i for i in range(n_items) if i % 2 == u % 2]
        for t, i in enumerate(rng.choice(liked, size=per_user, replace=False)):
            rows.append((f"u{u}", f"i{i}", 4.0, 1_000_000 + t))
    ds = Dataset(
        piano_action_items(n_items),
        pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]),
    )
    return TrainData.from_dataset(ds, item_features(ds))


@pytest.fixture(scope="module")
def model():
    return create_model(
        "two-tower", {"dim": 16, "max_epochs": 3, "max_history": 4, "samples_per_user": 2}
    ).fit(parity_data(50, 12, seed=1))


def _histories(n_items: int, lengths: list[int]) -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    rows, cols, vals = [], [], []
    for r, n in enumerate(lengths):
        idx = rng.choice(n_items, size=n, replace=False)
        rows += [r] * n
        cols += idx.tolist()
        vals += list(range(n, 0, -1))  # recency ranks, 1 = most recent
    return sp.csr_matrix((np.array(vals, np.float32), (rows, cols)), shape=(len(lengths), n_items))


@pytest.mark.parametrize("lengths,budget", [([3, 1, 7, 2, 7, 0], 8), ([5] * 4, 3), ([], 4)])
def test_chunks_cover_every_row_once_within_the_budget(lengths, budget):
    groups = two_tower._chunks(lengths, budget)
    seen = np.concatenate(groups) if groups else np.array([], np.int64)
    assert sorted(seen.tolist()) == list(range(len(lengths)))
    for g in groups:
        width = max(max(lengths[n] for n in g), 1)
        assert len(g) == 1 or len(g) * width <= budget


def test_scores_pool_more_than_max_history_and_do_not_depend_on_chunking(model, monkeypatch):
    hist = _histories(len(model.item_vectors), [10, 1, 6, 10, 0])
    users = np.full(hist.shape[0], -1)
    whole = model.score(users, hist)
    monkeypatch.setattr(two_tower, "SCORE_BUDGET", 7)  # rows one by one, or in pairs
    np.testing.assert_allclose(model.score(users, hist), whole, rtol=1e-5, atol=1e-6)
    # the oldest of the 10 items (beyond max_history=4) moves the score
    recent = hist[:1].copy()
    recent.data[recent.data > 4] = 0  # only the 4 most recent
    recent.eliminate_zeros()
    short = model.score(users[:1], recent)
    assert not np.allclose(short, whole[:1], atol=1e-4)


def test_contributions_add_up_to_the_score_of_a_long_history(model):
    hist = _histories(len(model.item_vectors), [10])
    items = np.arange(len(model.item_vectors))
    score = model.score(np.array([-1]), hist)[0]
    terms = model.contributions(hist, items)
    assert terms.shape == (len(items), 10)
    _assert_terms_explain_the_score(terms, score, model.item_bias[items])


def _assert_terms_explain_the_score(terms, score, bias):
    """Over the whole catalog: the terms are measured from the average item (their sums
    average 0), and the score is their sum plus the item's own bias plus a constant."""
    assert abs(terms.sum(axis=1).mean()) < 1e-5
    rest = score - terms.sum(axis=1) - bias
    np.testing.assert_allclose(rest, np.full_like(rest, rest.mean()), atol=1e-5)
    assert np.ptp(terms.sum(axis=1)) > 1e-3  # the terms do vary with the item


def test_items_beyond_score_history_contribute_nothing(model, monkeypatch):
    hist = _histories(len(model.item_vectors), [10])
    items = np.arange(len(model.item_vectors))
    monkeypatch.setattr(model, "config", model.config.model_copy(update={"score_history": 6}))
    score = model.score(np.array([-1]), hist)[0]
    terms = model.contributions(hist, items)
    old = hist.data[hist.indptr[0] : hist.indptr[1]] > 6  # recency rank: the 4 oldest
    assert np.all(terms[:, old] == 0) and np.any(terms[:, ~old] != 0)
    _assert_terms_explain_the_score(terms, score, model.item_bias[items])


def test_held_out_ndcg_counts_every_rank():
    scores = np.array([[0.9, 0.5, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4]], np.float32)
    # row 0: target at rank 0 -> 1; row 1: target item 0 is last of 4 -> 1 / log2(5)
    expected = (1.0 + 1.0 / np.log2(5.0)) / 2
    assert two_tower.held_out_ndcg(scores, np.array([0, 0])) == pytest.approx(expected)


def test_multi_target_loss_is_cross_entropy_per_target_averaged_per_row():
    import torch

    from avrec.models.neural.towers import multi_target_loss

    logits = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 7)).astype(np.float32))
    single = [np.array([2]), np.array([0]), np.array([6])]
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([2, 0, 6]))
    torch.testing.assert_close(multi_target_loss(logits, single), expected)
    logp = torch.log_softmax(logits, dim=1)
    several = [np.array([1, 4]), np.array([3]), np.array([0, 5, 6])]
    by_hand = -(logp[0, [1, 4]].mean() + logp[1, 3] + logp[2, [0, 5, 6]].mean()) / 3
    torch.testing.assert_close(multi_target_loss(logits, several), by_hand)


@pytest.mark.parametrize("share", [0.0, 0.4])
def test_training_with_one_or_several_targets_learns_the_taste_groups(share):
    """Users like the items of one parity; with one held-out target per example or a share
    of the history as targets, a user's top items are of their own parity."""
    model = create_model(
        "two-tower",
        {"dim": 16, "max_epochs": 15, "patience": 15, "samples_per_user": 4, "target_share": share},
    ).fit(parity_data(60, 10, seed=2))
    rec = model.recommend([f"u{u}" for u in range(10)], k=5)
    own = [np.mean([int(i[1:]) % 2 == u % 2 for i in items]) for u, items in enumerate(rec.items)]
    assert np.mean(own) >= 0.9, own


def test_weight_averaging_keeps_an_average_that_learns_the_taste_groups():
    """With ``weight_average`` on, the model kept is the moving average of the weights (not the
    last step's), and it ranks each user's own parity first."""
    data = parity_data(60, 10, seed=2)
    config = {"dim": 16, "max_epochs": 15, "patience": 15, "samples_per_user": 40, "threads": 1}
    averaged = create_model("two-tower", {**config, "weight_average": 0.9}).fit(data)
    live = create_model("two-tower", {**config, "weight_average": 0.0}).fit(data)
    assert not np.allclose(averaged.item_vectors, live.item_vectors)
    rec = averaged.recommend([f"u{u}" for u in range(10)], k=5)
    own = [np.mean([int(i[1:]) % 2 == u % 2 for i in items]) for u, items in enumerate(rec.items)]
    assert np.mean(own) >= 0.9, own


def test_item_bias_is_learned_and_a_new_item_gets_only_its_content_part(model, tmp_path):
    """Each item has a logit bias (content map + a warm item's own scalar, scaled by the
    temperature); an item added after training gets a zero ID bias and is scored with the
    content part alone, and the bias survives save/load."""
    import torch

    from avrec.models.base import Recommender

    tower = model.net.items
    assert tower.has_bias and np.any(tower.id_bias.weight.detach().numpy() != 0)
    copy = Recommender.load(model.save(tmp_path / "m"))
    np.testing.assert_allclose(copy.item_bias, model.item_bias, atol=1e-6)
    n = len(copy.item_vectors)
    assert copy.add_items(piano_action_items(41).iloc[[40]].assign(item_id="new")) == ["new"]
    grown = copy.net.items
    assert (
        grown.id_bias.weight.shape[0] == n + 1 and float(grown.id_bias.weight.detach()[n, 0]) == 0.0
    )
    with torch.no_grad():
        content_part = float(grown.item_content_bias(torch.tensor([n]))[0])
    assert copy.item_bias[n] == pytest.approx(copy.config.temperature * content_part, abs=1e-6)
    np.testing.assert_allclose(copy.item_bias[:n], model.item_bias, atol=1e-6)


def test_a_model_saved_before_item_biases_loads_without_them(tmp_path):
    """A save whose state has no ID bias (older avrec) loads as a tower without biases,
    scoring as it did: the plain dot product."""
    import json

    from avrec.models.base import Recommender

    data = parity_data(20, 8, seed=3)
    old = create_model("two-tower", {"dim": 8, "max_epochs": 1, "item_bias": False}).fit(data)
    path = old.save(tmp_path / "old")
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["config"]["item_bias"]  # as written before the option existed
    (path / "manifest.json").write_text(json.dumps(manifest))
    loaded = Recommender.load(path)
    assert loaded.config.item_bias is False and not loaded.net.items.has_bias
    hist, users = _histories(len(old.item_vectors), [3, 5, 2]), np.full(3, -1)
    np.testing.assert_allclose(loaded.score(users, hist), old.score(users, hist), atol=1e-6)


def test_sampled_softmax_adds_the_item_biases_to_the_logits():
    """With biases, the sampled softmax's logits are q . v / T + b: raising the target's ID
    bias lowers the loss, and the gradient reaches it."""
    import torch

    from avrec.models.neural.towers import item_tower_class, sampled_softmax_loss

    rng = np.random.default_rng(0)
    content = rng.normal(size=(30, 6)).astype(np.float32)
    tower = item_tower_class()(content, np.ones(30, bool), 4, 0.0, bias=True)
    queries = torch.nn.functional.normalize(torch.randn(3, 4), dim=-1)
    targets = torch.tensor([1, 2, 3])

    def loss():
        return sampled_softmax_loss(tower, queries, targets, 30, 10, 0.1, np.random.default_rng(1))

    before = loss()
    before.backward()
    assert float(tower.id_bias.weight.grad[1:4].abs().sum()) > 0
    with torch.no_grad():
        tower.id_bias.weight[1:4] += 5.0
    assert float(loss()) < float(before) - 1.0
