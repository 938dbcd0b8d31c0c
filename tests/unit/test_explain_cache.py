"""What explanations reuse across requests: split catalog columns and request vectors."""

from __future__ import annotations

import numpy as np
import pandas as pd

from avrec.data import Dataset
from avrec.models import content as content_module
from avrec.models.base import TrainData
from avrec.models.explain import shared_attributes, split_values
from avrec.models.registry import create_model


def test_split_values_follow_the_catalog_object():
    cat = pd.DataFrame({"genres": ["Drama|War", "Drama", None]})
    assert split_values(cat, "genres") == [["Drama", "War"], ["Drama"], []]
    assert shared_attributes(cat, 0, [1]) == ["Drama"]
    grown = pd.concat([cat, pd.DataFrame({"genres": ["War"]})], ignore_index=True)
    assert split_values(grown, "genres")[3] == ["War"] and shared_attributes(grown, 3, [0]) == [
        "War"
    ]
    assert len(split_values(cat, "genres")) == 3  # the old catalog keeps its own


def test_request_vectors_are_the_encoders_and_the_memo_stays_bounded(monkeypatch):
    items = pd.DataFrame(
        {"item_id": ["a", "b"], "title": ["Calm piano", "Loud drums"], "genres": ["Music", "Music"]}
    )
    inter = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"]})
    model = create_model("content", {"query_encoder": "text-multi"}).fit(
        TrainData.from_dataset(Dataset(items, inter))
    )
    from avrec.encoders.registry import get_encoder

    direct = get_encoder("text-multi").encode_queries(["piano for studying", "钢琴"])
    got = model.encode_queries(["piano for studying", "钢琴", "piano for studying"])
    np.testing.assert_allclose(got[:2], direct, atol=1e-6)
    np.testing.assert_array_equal(got[0], got[2])
    monkeypatch.setattr(content_module, "QUERY_MEMO", 2)
    again = model.encode_queries(["drums", "piano for studying"])
    assert len(model._query_memo) <= 2
    np.testing.assert_allclose(again[1], direct[0], atol=1e-6)


def test_titles_are_cached_per_catalog_and_missing_ones_name_the_item_id():
    from types import SimpleNamespace

    from avrec.models.explain import _name

    cat = pd.DataFrame({"title": ["Heat (1995)", None]})
    model = SimpleNamespace(catalog=cat, item_vocab=SimpleNamespace(ids=np.array(["i1", "i2"])))
    assert [_name(model, 0), _name(model, 1)] == ["Heat (1995)", "i2"]
    model.catalog = pd.concat([cat, pd.DataFrame({"title": ["Ran (1985)"]})], ignore_index=True)
    model.item_vocab.ids = np.array(["i1", "i2", "i3"])
    assert _name(model, 2) == "Ran (1985)"
