"""Removing users from saved model folders: every registered model, trained for real, loses
the users' rows (vocabulary and every per-user array) and then loads and recommends exactly as
before for everyone else."""

from __future__ import annotations

import re

import numpy as np
import pytest

from avrec.models.base import Recommender, TrainData
from avrec.models.forget import UnknownUserArray, forget_users
from avrec.models.names import model_targets
from avrec.models.registry import create_model

#: avrec's own models (other test modules register test-only ones)
BUILT_IN = sorted(n for n, target in model_targets().items() if target.startswith("avrec."))
GONE = ["u7", "u30"]
FAST = {"two-tower": {"max_epochs": 1}, "sequential": {"max_epochs": 1}}
#: the hybrids count co-occurrences in the stored training rows at request time (the prior of
#: short histories): without the gone users' rows those counts change, as they should, so the
#: equality is checked with that prior off
SETTINGS = {**FAST, "hybrid": {"prior_weight": 0.0}}
#: models whose ranking features include those request-time counts (checked for the rest)
COUNTS_AT_REQUEST_TIME = {"hybrid-ltr"}


@pytest.fixture(scope="module")
def data(request):
    return TrainData.from_dataset(request.getfixturevalue("synthetic_dataset"))


@pytest.fixture(scope="module")
def synthetic_dataset():  # module scope: the models are trained once per model
    from tests.conftest import synthetic_dataset as make

    return make.__wrapped__()


def _files_bytes(folder):
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.mark.parametrize("name", BUILT_IN)
def test_forget_users_keeps_everyone_else(name, data, tmp_path):
    try:
        model = create_model(name, SETTINGS.get(name, {})).fit(data)
    except ValueError as exc:  # a model this small dataset cannot train (says why)
        pytest.skip(str(exc))
    folder = model.save(tmp_path / name)
    (folder / "index-flat").mkdir()  # other files of the folder survive the rewrite
    (folder / "index-flat" / "index.json").write_text("{}")
    others = [u for u in model.user_vocab.ids if u not in GONE]
    before = Recommender.load(folder).recommend(others, 5, explain=True)
    anon_before = Recommender.load(folder).recommend([None], 5, histories=[["i1", "i3"]])

    nested = len(list(folder.rglob("users.json")))  # a ranker saves its parts as models too
    assert forget_users(folder, GONE) == 2 * nested
    assert forget_users(folder, GONE) == 0  # nothing left to remove: the folder is not touched

    loaded = Recommender.load(folder)
    assert not set(GONE) & set(loaded.user_vocab.ids)
    assert list(loaded.user_vocab.ids) == others
    assert loaded.train_matrix.shape == (len(others), len(model.item_vocab))
    rows = model.user_vocab.lookup(others)
    assert (loaded.train_matrix != model.train_matrix[rows]).nnz == 0
    if name not in COUNTS_AT_REQUEST_TIME:  # the rest: structure and bytes, below
        after = loaded.recommend(others, 5, explain=True)
        assert after.items == before.items
        # explanations may cite how many people chose an item: a count without the gone users
        assert [[re.sub(r"\d+", "N", e) for e in row] for row in after.explanations] == [
            [re.sub(r"\d+", "N", e) for e in row] for row in before.explanations
        ]
        np.testing.assert_allclose(np.array(after.scores), np.array(before.scores), rtol=1e-6)
        assert loaded.recommend([None], 5, histories=[["i1", "i3"]]).items == anon_before.items
    assert (folder / "index-flat" / "index.json").read_text() == "{}"
    for user in GONE:
        assert loaded.recommend([user], 3).user_ids == [user]  # now an unknown user
        assert f'"{user}"'.encode() not in _files_bytes(folder)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


def test_unknown_per_user_array_is_refused(data, tmp_path):
    """An array with one row per user that the scrubber does not know is not left behind
    silently: the deletion refuses and the folder stays as it was."""
    model = create_model("popularity").fit(data)
    model.state_arrays = lambda: {
        "item_counts": model.item_counts,
        "user_secret": np.zeros(len(model.user_vocab)),
    }
    folder = model.save(tmp_path / "odd")
    users_before = (folder / "users.json").read_text()
    with pytest.raises(UnknownUserArray, match="user_secret"):
        forget_users(folder, GONE)
    assert (folder / "users.json").read_text() == users_before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
