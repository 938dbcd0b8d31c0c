"""DPP and calibrated re-ranking, the one entry point and its knob."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from avrec import metrics as M
from avrec.rerank.apply import RerankOptionError, check_options, debiased, rerank
from avrec.rerank.calibration import calibrated, discount_relevance, rank_relevance
from avrec.rerank.dpp import dpp, relevance, similarity_kernel

RNG = np.random.default_rng(0)


def _log_det_l(items, rel, vectors, diversity):
    """log det of L_Y = diag(r) S diag(r) with r = exp(alpha rel), straight from the paper."""
    alpha = (1 - diversity) / (2 * diversity)
    r = np.exp(alpha * rel)
    sim = similarity_kernel(vectors)
    kernel = r[:, None] * sim * r[None, :]
    sign, logdet = np.linalg.slogdet(kernel[np.ix_(items, items)])
    return logdet if sign > 0 else -np.inf


@pytest.mark.parametrize("seed", range(5))
def test_dpp_each_pick_maximises_the_log_det_gain(seed):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(8, 5))
    scores = rng.normal(size=8)
    picked = dpp(np.arange(8), scores, vectors, 5, 0.5).tolist()
    rel = relevance(scores)
    for t in range(1, len(picked) + 1):
        prefix = picked[: t - 1]
        gains = {
            i: _log_det_l([*prefix, i], rel, vectors, 0.5) for i in range(8) if i not in prefix
        }
        assert gains[picked[t - 1]] == pytest.approx(max(gains.values()), abs=1e-9)


def test_dpp_equals_brute_force_on_a_tiny_case():
    # two near-duplicates of the best item and one different item: the best pair is {0, 3}
    vectors = np.array([[1.0, 0.0], [0.99, 0.1], [0.98, 0.15], [0.1, 1.0]])
    scores = np.array([1.0, 0.95, 0.9, 0.6])
    picked = dpp(np.arange(4), scores, vectors, 2, 0.5)
    rel = relevance(scores)
    best = max(itertools.combinations(range(4), 2), key=lambda y: _log_det_l(y, rel, vectors, 0.5))
    assert sorted(picked.tolist()) == sorted(best) == [0, 3]


def test_dpp_picks_diverse_items_among_identical_ones():
    vectors = np.array([[1.0, 0.0, 0.0]] * 4 + [[0.0, 1.0, 0.0], [0.5, 0.5, 0.7]])
    scores = np.array([1.0, 0.99, 0.98, 0.97, 0.5, 0.4])
    picked = dpp(np.arange(6), scores, vectors, 3, 0.5).tolist()
    assert picked[0] == 0 and set(picked) == {0, 4, 5}
    # only copies left: the list is filled in score order, no item twice
    full = dpp(np.arange(6), scores, vectors, 6, 0.5).tolist()
    assert sorted(full) == list(range(6)) and full[3:] == [1, 2, 3]


def test_dpp_drops_non_finite_scores_and_breaks_ties_by_position():
    vectors = np.eye(11)
    scores = np.array([np.nan, 1.0, -np.inf, 1.0])
    assert dpp(np.array([7, 8, 9, 10]), scores, vectors, 5, 0.3).tolist() == [8, 10]
    # orthogonal items with equal scores: the input order
    assert dpp(np.arange(4), np.ones(4), vectors, 4, 0.5).tolist() == [0, 1, 2, 3]


GENRES = np.array(
    [
        [1.0, 0.0, 0.0],  # items 0-3: genre A
        [1.0, 0.0, 0.0],
        [1.0, 0.0, 0.0],
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],  # item 4: B
        [0.0, 0.5, 0.5],  # item 5: B and C
        [0.0, 0.0, 0.0],  # item 6: no genre
    ]
)


def test_calibration_reduces_miscalibration():
    target = np.array([0.5, 0.5, 0.0])  # half A, half B
    scores = np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    plain = calibrated(np.arange(7), scores, GENRES, target, 4, 0.0)
    assert plain.tolist() == [0, 1, 2, 3]
    calib = calibrated(np.arange(7), scores, GENRES, target, 4, 0.5)
    kl = {
        name: M.miscalibration(target, M.genre_distribution(lst, GENRES))
        for name, lst in (("plain", plain), ("calibrated", calib))
    }
    assert kl["calibrated"] < kl["plain"] / 2
    assert calib[0] == 0 and 4 in calib
    # no genres in the history: the score order
    assert calibrated(np.arange(7), scores, GENRES, np.zeros(3), 3, 0.9).tolist() == [0, 1, 2]


def test_miscalibration_by_hand():
    p, q = np.array([0.5, 0.5]), np.array([1.0, 0.0])
    smoothed = np.array([0.995, 0.005])
    expected = 0.5 * np.log(0.5 / smoothed[0]) + 0.5 * np.log(0.5 / smoothed[1])
    assert M.miscalibration(p, q) == pytest.approx(expected)
    assert M.miscalibration(p, p) == pytest.approx(0.0)
    assert M.miscalibration(np.zeros(2), q) == 0.0
    assert M.genre_distribution([4, 5, 6], GENRES).tolist() == [0.0, 0.75, 0.25]
    assert M.genre_distribution([0, 4], GENRES, np.array([3.0, 1.0])).tolist() == [0.75, 0.25, 0]
    assert M.item_genre_distribution(np.array([[1.0, 1.0], [0, 0]])).tolist() == [
        [0.5, 0.5],
        [0.0, 0.0],
    ]


def test_popularity_bias_metrics_by_hand():
    pop = np.array([50, 30, 10, 5, 5, 0])  # 100 interactions; head: 50 + 30 = 80%
    tail = M.long_tail_items(pop)
    assert tail.tolist() == [False, False, True, True, True, True]
    assert M.long_tail_share([0, 2, 3, 5], tail) == 0.75
    assert M.long_tail_share([], tail) == 0.0
    pct = M.popularity_percentiles(pop)
    # item 3 and 4 share a count: 1 item below, 2 alike -> (1 + 1) / 6
    assert pct.tolist() == pytest.approx([5.5 / 6, 4.5 / 6, 3.5 / 6, 2 / 6, 2 / 6, 0.5 / 6])
    assert M.mean_percentile([0, 5], pct) == pytest.approx(0.5)
    assert np.isnan(M.mean_percentile([], pct))
    assert M.long_tail_items(np.zeros(3)).all()


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=40))
def test_long_tail_head_holds_at_least_the_share(counts):
    pop = np.array(counts)
    tail = M.long_tail_items(pop)
    head = pop[~tail]
    if pop.sum():
        assert head.sum() >= 0.8 * pop.sum() - 1e-6
        # the fewest items: without its least popular member the head is short of 80%
        assert head.sum() - head.min() < 0.8 * pop.sum()
        assert pop[tail].max(initial=0) <= head.min()
    pct = M.popularity_percentiles(pop)
    assert ((pct > 0) & (pct < 1)).all()
    assert (np.diff(pct[np.argsort(pop, kind="stable")]) >= 0).all()


@pytest.mark.parametrize("kind", ["none", "mmr", "dpp", "calibrated"])
def test_knob_zero_is_the_score_order(kind):
    vectors = RNG.normal(size=(20, 4))
    genres = M.item_genre_distribution(RNG.integers(0, 2, size=(20, 3)).astype(float))
    scores = RNG.normal(size=20)
    cand = RNG.permutation(20)
    out = rerank(
        cand,
        scores[cand],
        8,
        kind=kind,
        diversity=0.0,
        item_vectors=vectors,
        item_genres=genres,
        target=np.array([0.2, 0.3, 0.5]),
    )
    assert out.tolist() == np.argsort(-scores)[:8].tolist()


@given(
    st.lists(st.floats(-5, 5), min_size=1, max_size=25),
    st.sampled_from(["mmr", "dpp", "calibrated"]),
    st.floats(0, 1),
    st.integers(1, 30),
)
def test_rerank_returns_distinct_finite_candidates(scores, kind, diversity, k):
    n = len(scores)
    rng = np.random.default_rng(n)
    vectors = rng.normal(size=(n, 3))
    genres = M.item_genre_distribution(rng.integers(0, 2, size=(n, 3)).astype(float))
    out = rerank(
        np.arange(n),
        np.array(scores),
        k,
        kind=kind,
        diversity=diversity,
        item_vectors=vectors,
        item_genres=genres,
        target=np.array([0.5, 0.25, 0.25]),
    )
    assert len(out) == min(k, n) and len(set(out.tolist())) == len(out)
    assert out[0] == int(np.argmax(scores)) or diversity > 0


def test_debias_penalises_popular_items():
    scores = np.array([1.0, 0.9, 0.8])
    pop = np.array([1000, 10, 1])
    assert rerank(np.arange(3), scores, 3).tolist() == [0, 1, 2]
    assert rerank(np.arange(3), scores, 3, debias=2.0, popularity=pop).tolist() == [2, 1, 0]
    z = debiased(scores, pop, 0.0)
    assert z.mean() == pytest.approx(0.0) and z.std() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kind", "diversity", "debias", "message"),
    [
        ("random", 0.5, 0.0, "rerank must be one of none, mmr, dpp, calibrated"),
        ("dpp", 1.5, 0.0, "diversity must be in [0, 1]"),
        ("dpp", float("nan"), 0.0, "diversity must be in [0, 1]"),
        ("mmr", "0.5", 0.0, "diversity must be a number"),
        ("mmr", True, 0.0, "diversity must be a number"),
        ("none", 0.0, -1.0, "debias must be in [0, 10]"),
    ],
)
def test_bad_options_are_refused(kind, diversity, debias, message):
    with pytest.raises(RerankOptionError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_options(kind, diversity, debias)


def test_methods_without_their_inputs_are_refused():
    with pytest.raises(RerankOptionError, match="needs item vectors"):
        rerank(np.arange(3), np.ones(3), 2, kind="dpp", diversity=0.5)
    with pytest.raises(RerankOptionError, match="needs item genres"):
        rerank(np.arange(3), np.ones(3), 2, kind="calibrated", diversity=0.5)
    with pytest.raises(RerankOptionError, match="popularity"):
        rerank(np.arange(3), np.ones(3), 2, debias=1.0)


def test_calibration_relevance_is_the_reciprocal_rank_ties_sharing_the_better():
    scores = np.array([3.0, 2.0, 2.0, 1.0])
    assert rank_relevance(scores).tolist() == pytest.approx([1.0, 1 / 2, 1 / 2, 1 / 4])
    assert discount_relevance(scores).tolist() == pytest.approx(
        [1.0, 1 / np.log2(3), 1 / np.log2(3), 1 / np.log2(5)]
    )


def test_calibration_weighs_relevance_by_the_place_discount():
    # history half A, half B; the candidates: six A items, then four B items
    target = np.array([0.5, 0.5, 0.0])
    genres = np.array([[1.0, 0.0, 0.0]] * 6 + [[0.0, 1.0, 0.0]] * 4)
    args = (np.arange(10), np.linspace(1.0, 0.1, 10), genres, target, 4)
    # place 4 (discount 1/log2(5) = 0.43) after three A items, lambda 0.05, a = 0.05:
    # item 3 (rel 1/4): 0.95 * 0.43 * 0.25 - 0.05 * KL 1.164 = 0.044
    # item 6 (rel 1/7): 0.95 * 0.43 * 0.143 - 0.05 * KL 0.128 = 0.052 -> the B item
    assert calibrated(*args, 0.05).tolist() == [0, 1, 2, 6]
    # Steck's plain sum: 0.95 * 0.25 - 0.058 = 0.179 against 0.129 -> the A item
    assert calibrated(*args, 0.05, positional=False).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="relevance"):
        calibrated(*args, 0.3, relevance="nope")
