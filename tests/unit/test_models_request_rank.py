"""The learned request blend (models.hybrid.requestrank): simulated requests from an item's own
text, a ranker that learns to combine request similarity with taste, and the no-history path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from avrec.models.hybrid.requestrank import (
    FEATURES,
    candidates,
    explain_shares,
    fit_request_ranker,
    genre_match,
    item_genre_matrix,
    rank_requests,
    share_sentence,
)
from avrec.models.hybrid.simrequests import item_phrases, simulate

N_TOPICS, N_ITEMS, N_USERS = 8, 240, 160


def test_phrases_leave_out_the_title_names_and_stop_words():
    row = {
        "title": "Raging Bull (1980)",
        "genres": "Drama|(no genres listed)",
        "tags": "boxing|director: Martin Scorsese",
        "description": "Jake LaMotta fights his way up through the boxing world of brutal rivals.",
    }
    genres, tags, phrases = item_phrases(row)
    assert genres == ["drama"]
    assert tags == ["boxing", "martin scorsese"]
    assert "boxing" in phrases and "brutal rivals" in phrases
    assert not {"jake", "lamotta", "bull", "raging", "through", "the"} & set(phrases)


class _Taste:
    """What ``fit_sub`` returns: a model whose taste is each user's topic preference plus
    noise, seen through the (view's) training matrix."""

    def __init__(self, matrix: sp.csr_matrix, taste: np.ndarray):
        self.train_matrix, self.train_recency, self.taste = matrix, None, taste

    def score(self, users, histories):
        return self.taste[users]


def _world(seed: int = 0):
    """Items in topics; a request names a topic (similarity: high for its topic's items);
    each user likes a few items of every topic, which taste scores see (noisily). The
    answer of a request is an item of the asked topic that the user likes: only the two
    together find it."""
    from avrec.data import Dataset
    from avrec.models.base import TrainData

    rng = np.random.default_rng(seed)
    topic = np.arange(N_ITEMS) % N_TOPICS
    names = [f"topic{t}" for t in range(N_TOPICS)]
    items = pd.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(N_ITEMS)],
            "title": [f"Item {n}" for n in range(N_ITEMS)],
            "genres": [names[t] for t in topic],
        }
    )
    liked = rng.random((N_USERS, N_ITEMS)) < 0.08
    rows = [(f"u{u:03d}", f"i{i}") for u, i in zip(*np.nonzero(liked), strict=True)]
    data = TrainData.from_dataset(
        Dataset(items, pd.DataFrame(rows, columns=["user_id", "item_id"]))
    )
    taste = (liked + 0.6 * rng.standard_normal(liked.shape)).astype(np.float32)
    sim = np.where(topic[None, :] == np.arange(N_TOPICS)[:, None], 0.8, 0.3)
    sim = (sim + 0.02 * rng.standard_normal(sim.shape)).astype(np.float32)

    def request_scores(texts):
        return sim[[names.index(t) for t in texts]]

    return data, taste, request_scores, topic


def _hit_rate(order_scores: np.ndarray, answers: np.ndarray, k: int = 10) -> float:
    top = np.argsort(-order_scores, axis=1)[:, :k]
    return float(np.mean([a in row for a, row in zip(answers, top, strict=True)]))


def test_the_learned_blend_beats_request_alone_and_taste_alone():
    data, taste, request_scores, _ = _world()
    priors = np.zeros((N_ITEMS, 3), np.float32)
    booster = fit_request_ranker(
        data,
        lambda view: _Taste(view.matrix, taste),
        request_scores,
        priors,
        n_requests=400,
        n_candidates=40,
        no_history_share=0.3,
        trees=60,
        seed=0,
    )
    assert booster is not None and booster.num_feature() == len(FEATURES)
    # fresh requests (another seed): users, hidden items and their topic as the request
    users, hidden, texts = simulate(data, 150, seed=7)
    hist = sp.csr_matrix(data.matrix[users])
    req = request_scores(texts)
    learned = rank_requests(booster, taste[users], req, np.ones(len(users), bool), hist, priors, 40)
    hr_learned = _hit_rate(learned, hidden)
    hr_taste, hr_request = _hit_rate(taste[users], hidden), _hit_rate(req, hidden)
    assert hr_learned > 1.25 * hr_taste and hr_learned > 2 * hr_request


def test_without_history_the_request_and_priors_decide():
    data, taste, request_scores, topic = _world()
    priors = np.zeros((N_ITEMS, 3), np.float32)
    priors[:, 0] = np.linspace(-1, 1, N_ITEMS)  # later items are more popular
    booster = fit_request_ranker(
        data,
        lambda view: _Taste(view.matrix, taste),
        request_scores,
        priors,
        n_requests=300,
        n_candidates=40,
        no_history_share=1.0,
        trees=40,
        seed=1,
    )
    req = request_scores(["topic3", "topic3"])
    empty = sp.csr_matrix((2, N_ITEMS), dtype=np.float32)
    noise = np.random.default_rng(2).standard_normal((2, N_ITEMS)).astype(np.float32)
    memo: dict = {}
    out = rank_requests(booster, noise, req, np.ones(2, bool), empty, priors, 40, memo)
    # taste scores of an empty history play no part: both rows rank alike
    np.testing.assert_array_equal(np.argsort(-out[0])[:20], np.argsort(-out[1])[:20])
    top = np.argsort(-out[0])[:10]
    assert (topic[top] == 3).all()
    shares = explain_shares(booster, memo["requests"], [top, top[:2]])
    assert all(s.startswith("ranked by") and "your taste" not in s for s in shares[0])
    assert len(shares[1]) == 2


def test_genre_match_is_the_best_of_the_items_genres():
    items = pd.DataFrame({"genres": ["Comedy|Drama", "Drama", "(no genres listed)", None]})
    names, onehot = item_genre_matrix(items)
    assert names == ["Comedy", "Drama"]
    assert onehot.tolist() == [[True, True], [False, True], [False, False], [False, False]]
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]])  # "Comedy", "Drama"
    out = genre_match(np.array([[0.8, 0.6]]), vectors, onehot)
    np.testing.assert_allclose(out[0, :2], [0.8, 0.6])
    assert np.isnan(out[0, 2:]).all()


def test_the_ranker_learns_from_the_genre_match_where_similarity_says_little():
    data, taste, _, topic = _world(3)
    names = [f"topic{t}" for t in range(N_TOPICS)]
    noise = np.random.default_rng(4).random((N_TOPICS, N_ITEMS)).astype(np.float32)
    asked = np.where(topic[None, :] == np.arange(N_TOPICS)[:, None], 0.9, 0.2)

    def request_scores(texts):  # the items' own text says nothing of the topic
        return noise[[names.index(t) for t in texts]]

    def genre_scores(texts):  # the request names the items' genre
        return asked[[names.index(t) for t in texts]].astype(np.float32)

    priors = np.zeros((N_ITEMS, 3), np.float32)
    booster = fit_request_ranker(
        data,
        lambda view: _Taste(view.matrix, taste),
        request_scores,
        priors,
        n_requests=300,
        n_candidates=240,
        no_history_share=1.0,
        trees=40,
        seed=2,
        genre_scores=genre_scores,
    )
    req = request_scores(["topic5"])
    empty = sp.csr_matrix((1, N_ITEMS), dtype=np.float32)
    top = np.argsort(
        -rank_requests(
            booster, req, req, np.ones(1, bool), empty, priors, 240, genre=genre_scores(["topic5"])
        )
    )[0, :10]
    assert (topic[top] == 5).all()
    unknown = rank_requests(booster, req, req, np.ones(1, bool), empty, priors, 240)
    assert (topic[np.argsort(-unknown)[0, :10]] == 5).mean() < 0.5  # without the genre feature


def test_candidates_take_both_tops_and_make_room_for_the_history():
    request = np.arange(10, dtype=np.float32)
    taste = -request
    np.testing.assert_array_equal(candidates(request, None, 2, np.array([9])), [7, 8, 9])
    np.testing.assert_array_equal(candidates(request, taste, 2), [0, 1, 8, 9])
    np.testing.assert_array_equal(
        candidates(request, taste, 2, np.array([0, 9])), [0, 1, 2, 7, 8, 9]
    )


def test_share_sentence_names_the_parts_largest_first():
    text = share_sentence({"request": 0.25, "taste": 0.7, "quality": 0.05})
    assert text == "ranked by your taste 70%, the request 25%, popularity and ratings 5%"
    assert share_sentence({"request": 0.0, "taste": 0.0, "quality": 0.0}) == ""


def test_the_hybrid_learns_the_blend_explains_it_and_saves_it(tmp_path, avrec_home):
    from avrec.data import Dataset
    from avrec.models.base import TrainData
    from avrec.models.hybrid import Hybrid

    rng = np.random.default_rng(0)
    n_items = 40
    items = pd.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(n_items)],
            "title": [f"Piece {n}" for n in range(n_items)],
            "genres": ["Music|Ambient" if n % 2 else "Action|Thriller" for n in range(n_items)],
            "description": [
                "Soft piano melodies for a quiet evening."
                if n % 2
                else "Car chases and explosions."
                for n in range(n_items)
            ],
        }
    )
    rows = [
        (f"u{u}", f"i{i}")
        for u in range(40)
        for i in rng.choice(np.arange(u % 2, n_items, 2), 8, replace=False)
    ]
    data = TrainData.from_dataset(
        Dataset(items, pd.DataFrame(rows, columns=["user_id", "item_id"]))
    )
    model = Hybrid(
        {
            "vae": {"weight": 0.0},
            "request": {"requests": 80, "candidates": 10, "trees": 20, "min_users": 10},
        }
    ).fit(data)
    assert "request_ranker" in model.parts()
    recs = model.recommend(["u0", None], 5, queries=["quiet piano", "quiet piano"], explain=True)
    assert all(int(i[1:]) % 2 == 1 for i in recs.items[1])  # no history: the request decides
    assert all("ranked by" in e for e in recs.explanations[0] + recs.explanations[1])
    assert not any("your taste" in e for e in recs.explanations[1])
    # with a history, the taste side names a liked item; without one, none
    assert any("people who liked Piece" in e for e in recs.explanations[0])
    assert not any("people who liked" in e for e in recs.explanations[1])
    few = Hybrid({"vae": {"weight": 0.0}, "request": {"min_users": 41}}).fit(data)
    assert "request_ranker" not in few.parts()  # 40 people: the fixed blend
    model.save(tmp_path / "m")
    again = Hybrid.load(tmp_path / "m").recommend(["u0", None], 5, queries=["quiet piano"] * 2)
    assert again.items == recs.items


def _saved_ranker(n_features: int) -> tuple[list[np.ndarray], object, dict]:
    """A LambdaRank booster over ``n_features`` features as a saved request ranker's state:
    (its training lists, the booster, the state)."""
    from avrec.models.lambdarank import fit_lambdarank

    rng = np.random.default_rng(0)
    xs = [rng.random((20, n_features)).astype(np.float32) for _ in range(10)]
    ys = [(np.arange(20) == n).astype(np.int32) for n in range(10)]
    old = fit_lambdarank(xs, ys, [20] * 10, trees=5, num_leaves=4, min_child_samples=5, seed=0)
    state = {
        "booster": np.frombuffer(old.model_to_string().encode(), np.uint8),
        "priors": np.zeros((20, 3), np.float32),
    }
    return xs, old, state


def test_a_ranker_saved_before_the_genre_match_keeps_serving_without_it():
    from avrec.models.hybrid.config import RequestBlendConfig
    from avrec.models.hybrid.requestrank import GENRE_MATCH, RequestRanker, part_shares

    xs, old, state = _saved_ranker(len(FEATURES) - 1)
    ranker = RequestRanker(RequestBlendConfig())
    ranker.set_state(state)
    extra = np.random.default_rng(1).random(20).astype(np.float32)
    full = np.insert(xs[0], GENRE_MATCH, extra, axis=1)
    np.testing.assert_allclose(ranker.booster_.predict(full), old.predict(xs[0]))
    shares = part_shares(ranker.booster_, full, np.arange(3))
    assert len(shares) == 3
    assert all(abs(sum(s.values()) - 1) < 1e-6 for s in shares if any(s.values()))
    assert ranker.state()["booster"].tobytes() == state["booster"].tobytes()


def test_a_ranker_saved_with_other_features_is_refused_with_a_way_out():
    from avrec.errors import AvrecError
    from avrec.models.hybrid.config import RequestBlendConfig
    from avrec.models.hybrid.requestrank import RequestRanker

    _, _, state = _saved_ranker(len(FEATURES) - 2)
    with pytest.raises(AvrecError, match="retrain"):
        RequestRanker(RequestBlendConfig()).set_state(state)
