"""The hybrid's catalog text encoder chosen by the catalog's size: MiniLM (``text-en``) up to
``content.fast_above`` items, the static ``text-fast`` above (catalog and requests), recorded
in the saved model and used again for requests after loading; a named encoder always wins.
Real WordLlama weights; MiniLM's vectors stand in as the features (never loaded here)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avrec.encoders.pipeline import encode_item_texts
from avrec.models.base import Recommender, TrainData
from avrec.models.capabilities import ChoosesTextEncoder
from avrec.models.hybrid import Hybrid
from avrec.models.hybrid.config import ContentPartConfig, text_encoders
from tests.unit.test_models_hybrid_parts import N_ITEMS, _data

QUICK = {
    "backbone": {"kind": "sparse", "neighbors": 20},
    "vae": {"weight": 0.0},
    "cold_ranker": {"share": 0.0},
    "request": {"learned": False},
    "recency": {"learn": False},
}


def _config(**content) -> dict:
    return {**QUICK, "content": {"query_encoder": "text-en", **content}}


@pytest.fixture(scope="module")
def data() -> TrainData:
    return _data()


def test_text_encoders_by_catalog_size():
    auto = ContentPartConfig(query_encoder="text-en")
    assert text_encoders(auto, 50_000) == ("text-en", "text-en")
    assert text_encoders(auto, 50_001) == ("text-fast", "text-fast")
    # E5 requests stay E5; a named encoder is kept at any size
    assert text_encoders(ContentPartConfig(), 10**6) == ("text-fast", "text-multi")
    named = ContentPartConfig(encoder="text-en", query_encoder="text-en")
    assert text_encoders(named, 10**6) == ("text-en", "text-en")
    assert Hybrid(_config(fast_above=10)).text_encoder(11) == "text-fast"
    assert isinstance(Hybrid(), ChoosesTextEncoder) and Hybrid().text_encoder(9_742) == "text-en"


def test_below_the_threshold_the_features_are_read_as_before(data):
    model = Hybrid(_config(query_encoder=None)).fit(data)
    assert model.content.config.encoder == "text-en"
    assert np.array_equal(model.content.vectors, data.item_features["text"])


def test_above_the_threshold_the_catalog_and_requests_use_text_fast(data, tmp_path):
    model = Hybrid(_config(fast_above=N_ITEMS - 1)).fit(data)
    c = model.content.config
    assert (c.encoder, c.query_encoder) == ("text-fast", "text-fast")
    # MiniLM features of the data are not read: the catalog is encoded by text-fast
    expected = encode_item_texts(data.items, "text-fast")
    assert model.content.vectors.shape == (N_ITEMS, 256)
    assert np.allclose(model.content.vectors, expected, atol=1e-6)
    assert model.content.query_vectors is not None
    assert model.content.query_vectors.shape == (N_ITEMS, 256)

    users = np.arange(3)
    hist = model.history_matrix(users)
    asked = ["Film 7", None, "Film 12"]
    before = model.score(users, hist, asked)
    model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["learned"]["content"] == {"encoder": "text-fast", "query_encoder": "text-fast"}
    loaded = Recommender.load(tmp_path / "m")
    assert isinstance(loaded, Hybrid)
    assert loaded.content.config.query_encoder == "text-fast"
    assert np.allclose(loaded.score(users, loaded.history_matrix(users), asked), before, atol=1e-5)


def test_features_from_text_fast_are_read_not_encoded_again(data):
    marker = np.zeros((N_ITEMS, 256), np.float32)
    marker[np.arange(N_ITEMS), np.arange(N_ITEMS) % 256] = 1.0
    fast = TrainData(
        **{
            **data.__dict__,
            "item_features": {**data.item_features, "text": marker},
            "text_encoder": "text-fast",
        }
    )
    model = Hybrid(_config(fast_above=N_ITEMS - 1)).fit(fast)
    assert np.array_equal(model.content.vectors, marker)


def test_a_named_encoder_is_kept_above_the_threshold(data):
    model = Hybrid(_config(encoder="text-en", fast_above=10, query_encoder=None)).fit(data)
    assert model.content.config.encoder == "text-en"
    assert np.array_equal(model.content.vectors, data.item_features["text"])
