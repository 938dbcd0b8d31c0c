"""Two-tower with the top text-encoder layer fine-tuned (``finetune_text_layers``): only the top
layer learns, the item tower reads the fine-tuned vectors, save/load keeps them, and with 0
none of it runs. Small: 16 items with one-line texts, one epoch of each phase."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from avrec.data import Dataset
from avrec.models.base import Recommender, TrainData
from avrec.models.registry import create_model
from tests.conftest import piano_action_items

SMALL = {
    "dim": 16,
    "samples_per_user": 2,
    "max_epochs": 1,
    "finetune_after_epochs": 1,
    "finetune_epochs": 1,
    "finetune_batch_items": 8,
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n_items = 16
    items = piano_action_items(n_items, genres=("Music", "Action"))
    rows = [
        (f"u{u}", f"i{i}", 1_000_000 + t)
        for u in range(24)
        for t, i in enumerate(rng.choice(np.arange(u % 2, n_items, 2), 5, replace=False))
    ]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return TrainData.from_dataset(Dataset(items, inter))


@pytest.fixture(scope="module")
def tuned(data):
    return create_model("two-tower", {**SMALL, "finetune_text_layers": 1}).fit(data)


def test_only_the_top_layer_learns(tuned):
    from avrec.models.neural.text_finetune import _load_pretrained

    _, pretrained = _load_pretrained()
    tuner = tuned.text_tuner
    top = dict(tuner.top[0].named_parameters())
    ref = dict(pretrained.encoder.layer[5].named_parameters())
    assert set(top) == set(ref)
    assert any(not np.allclose(top[k].detach().numpy(), ref[k].numpy()) for k in top)
    lower, lower_ref = tuner.bert.state_dict(), pretrained.state_dict()
    for key in lower_ref:
        if not key.startswith("encoder.layer.5.") and "position_ids" not in key:
            np.testing.assert_array_equal(lower[key].numpy(), lower_ref[key].numpy(), err_msg=key)


def test_item_tower_reads_the_fine_tuned_text(tuned, data):
    content = tuned.net.items.content.numpy()[:, :384]
    np.testing.assert_allclose(tuned.text_vectors(data.items), content, atol=1e-5)
    from avrec.encoders.pipeline import encode_item_texts

    frozen = encode_item_texts(data.items, "text-en")
    assert not np.allclose(frozen, content, atol=1e-4)  # the top layer moved the vectors


def test_save_load_gives_identical_recommendations(tuned, data, tmp_path):
    tuned.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    a = tuned.recommend(["u0", "stranger"], k=5, histories=[None, ["i1", "i3"]], explain=True)
    b = loaded.recommend(["u0", "stranger"], k=5, histories=[None, ["i1", "i3"]], explain=True)
    assert a.items == b.items and a.explanations == b.explanations
    np.testing.assert_allclose(np.concatenate(a.scores), np.concatenate(b.scores), rtol=1e-6)
    q = {"k": 3, "histories": [[]], "queries": ["calm piano"]}  # through the fine-tuned encoder
    assert tuned.recommend(["x"], **q).items == loaded.recommend(["x"], **q).items
    new = pd.DataFrame({"item_id": ["n1"], "title": ["Calm piano nocturne"], "genres": ["Music"]})
    np.testing.assert_allclose(loaded.text_vectors(new), tuned.text_vectors(new), atol=1e-6)


def test_frozen_by_default_runs_no_fine_tuning(data, monkeypatch, tmp_path):
    import avrec.models.neural.text_finetune as ft

    def fail(*args, **kwargs):
        raise AssertionError("fine-tuning ran with finetune_text_layers=0")

    monkeypatch.setattr(ft, "finetune_two_tower", fail)
    monkeypatch.setattr(ft, "TextTuner", fail)
    model = create_model("two-tower", {**SMALL, "finetune_after_epochs": None}).fit(data)
    assert model.text_tuner is None
    model.save(tmp_path / "m")
    with np.load(tmp_path / "m" / "state.npz") as z:
        assert not [k for k in z.files if ft.PREFIX in k]
