"""Two-tower and sequential models take new catalog items without retraining (``add_items``):
the items are encoded like the training ones (same text encoder, training genre vocabulary)
and scored through the trained item tower as cold items; this survives save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from avrec.data import Dataset
from avrec.fusion.features import item_features
from avrec.models.base import Recommender, TrainData
from avrec.models.registry import create_model
from tests.conftest import piano_action_items

SMALL = {
    "two-tower": {"dim": 32, "max_epochs": 12, "samples_per_user": 4, "patience": 12},
    "sequential": {"dim": 32, "max_epochs": 15, "patience": 15, "layers": 1, "batch_size": 16},
}
NEW = pd.DataFrame(
    {
        "item_id": ["new-piano", "new-action", "i0"],
        "title": ["Calm piano nocturne", "Loud action explosion", "already known"],
        # "Brandnew" is not in the training genre vocabulary: ignored in the genre block
        "genres": ["Music|Ambient|Brandnew", "Action|Thriller", "Music"],
    }
)


def _dataset(items: pd.DataFrame | None = None) -> Dataset:
    rng = np.random.default_rng(0)
    n_items = 40
    base = piano_action_items(n_items)
    rows = []
    for u in range(60):
        liked = [i for i in range(n_items) if i % 2 == u % 2]
        for t, i in enumerate(rng.choice(liked, size=8, replace=False)):
            rows.append((f"u{u}", f"i{i}", 4.0, 1_000_000 + t))
    items = base if items is None else pd.concat([base, items], ignore_index=True)
    return Dataset(items, pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]))


@pytest.fixture(scope="module")
def fitted():
    cache = {}

    def get(name):
        if name not in cache:
            ds = _dataset()
            data = TrainData.from_dataset(ds, item_features(ds))
            cache[name] = create_model(name, SMALL[name]).fit(data)
        return cache[name]

    return get


def _copy(model, tmp_path, name):
    model.save(tmp_path / name)
    return Recommender.load(tmp_path / name)


def _user_vector(model, history: list[str]) -> np.ndarray:
    """The user side of the score ``u . v_j`` for a history, from the model's own parts."""
    import torch

    idx = model.item_vocab.lookup(history)
    if model.name == "two-tower":
        a, mapped, _ = model._user_parts([idx])
        return (a[0][:, None] * mapped[0]).sum(axis=0)
    with torch.no_grad():
        return model.net(torch.from_numpy(idx[None, :]))[0, -1].numpy()


@pytest.mark.parametrize("name", ["two-tower", "sequential"])
def test_added_items_are_encoded_like_training_items_and_scored_by_the_item_tower(
    name, fitted, tmp_path
):
    import torch

    model = _copy(fitted(name), tmp_path, "m")
    history = ["i1", "i3", "i5"]
    before = model.recommend(["stranger"], k=40, histories=[history], exclude_seen=False)
    assert model.add_items(NEW) == ["new-piano", "new-action"]  # the known ID is skipped
    assert model.add_items(NEW) == []
    assert len(model.item_vocab) == 42 and model.catalog["item_id"].iloc[-1] == "new-action"
    # the content inputs are what fit-time feature building gives for the same rows
    features = item_features(_dataset(NEW.iloc[:2]))
    content = model.net.items.content.numpy()
    np.testing.assert_allclose(content[40:, :384], features["text"][40:], atol=1e-6)
    # genres over the training vocabulary: like training items of the same known genres
    np.testing.assert_array_equal(content[40:, 384:], content[[1, 0], 384:])
    # old items keep their scores; a new item scores exactly u . normalise(proj(content)),
    # plus, for the two-tower model, the content part of its logit bias (no ID part)
    after = model.recommend(["stranger"], k=42, histories=[history], exclude_seen=False)
    old = dict(zip(before.items[0], before.scores[0], strict=True))
    for item, score in zip(after.items[0], after.scores[0], strict=True):
        if item in old:
            assert score == pytest.approx(old[item], abs=1e-5)
    with torch.no_grad():
        tower = torch.nn.functional.normalize(
            model.net.items.proj(torch.from_numpy(content[40:])), dim=-1
        )
        bias = model.net.items.item_content_bias(torch.arange(40, 42)).numpy()
    assert (name == "two-tower") == bool(np.all(bias != 0))
    expected = tower.numpy() @ _user_vector(model, history) + model.config.temperature * bias
    got = dict(zip(after.items[0], after.scores[0], strict=True))
    np.testing.assert_allclose(
        [got["new-piano"], got["new-action"]], expected, rtol=1e-4, atol=1e-5
    )
    # ...and a new item matching the history's taste ranks first among the new ones
    recs = model.recommend(
        ["stranger"], k=1, histories=[history], candidates=[["new-piano", "new-action"]]
    )
    assert recs.items[0] == ["new-piano"]
    recs = model.recommend(
        ["stranger"], k=1, histories=[["i0", "i2", "i4"]], candidates=[["new-piano", "new-action"]]
    )
    assert recs.items[0] == ["new-action"]
    # new items can also be part of a history
    assert model.recommend(["stranger"], k=5, histories=[["new-piano", "i1"]]).items[0]


@pytest.mark.parametrize("name", ["two-tower", "sequential"])
def test_add_items_survives_save_and_load(name, fitted, tmp_path):
    model = fitted(name)
    in_memory = _copy(model, tmp_path, "a")
    in_memory.add_items(NEW)
    after_load = _copy(model, tmp_path, "b")  # add after load
    after_load.add_items(NEW)
    reloaded = _copy(in_memory, tmp_path, "c")  # save after add, then load
    requests = {"user_ids": ["u0", "stranger"], "k": 10, "histories": [None, ["i1", "new-piano"]]}
    a = in_memory.recommend(**requests)
    for other in (after_load, reloaded):
        b = other.recommend(**requests)
        assert a.items == b.items
        np.testing.assert_allclose(np.concatenate(a.scores), np.concatenate(b.scores), rtol=1e-5)
    assert "new-piano" in reloaded.item_vocab.ids and reloaded.add_items(NEW) == []


def test_media_blocks_are_reduced_normalised_and_flagged():
    from avrec.models.neural.towers import media_inputs, media_width

    rng = np.random.default_rng(0)
    image = rng.normal(size=(10, 1280)).astype(np.float32)
    image[[2, 5]] = 0.0  # no poster
    audio = np.zeros((10, 1024), np.float32)  # nobody has audio: no block
    features = {"text": np.ones((10, 384), np.float32), "image": image, "audio": audio}
    out = media_inputs(features, 10)
    assert (
        out.shape == (10, 8) == (10, media_width(features))
    )  # 7 components (8 posters - 1) + a flag
    assert np.allclose(
        np.linalg.norm(out[:, :7], axis=1), [1, 1, 0, 1, 1, 0, 1, 1, 1, 1], atol=1e-5
    )
    assert out[:, 7].tolist() == [1, 1, 0, 1, 1, 0, 1, 1, 1, 1]
    assert media_inputs({"text": features["text"]}, 10).shape == (10, 0)


@pytest.mark.parametrize("name", ["two-tower", "sequential"])
def test_media_vectors_enter_the_item_tower_and_new_items_get_zeros(name, tmp_path):
    """Pictures that follow the two kinds: with them in, the item tower's content has the media
    block; items added later get zeros there; the choice survives save/load."""
    ds = _dataset()
    features = item_features(ds)
    kind = np.arange(40) % 2
    rng = np.random.default_rng(1)
    features["image"] = (rng.normal(size=(40, 1280)) * 0.1 + kind[:, None] * 1.0).astype(np.float32)
    model = create_model(name, {**SMALL[name], "media": "on"}).fit(
        TrainData.from_dataset(ds, features)
    )
    width = int(model.recipe["recipe_media_width"])
    assert width == 40  # 39 components + the flag
    content = model.net.items.content.numpy()
    assert np.all(content[:, -1] == 1.0) and np.abs(content[:, -width:-1]).sum() > 0
    copy = _copy(model, tmp_path, name)
    if name == "two-tower":
        assert copy.media_used
    added = copy.add_items(NEW)
    assert added == ["new-piano", "new-action"]
    grown = copy.net.items.content.numpy()
    assert grown.shape[1] == content.shape[1] and np.all(grown[-2:, -width:] == 0.0)
