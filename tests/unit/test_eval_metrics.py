"""Metrics: a hand-computed example, and properties (Hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avrec import metrics as M


def test_hand_computed_example():
    ranked = [7, 3, 9, 1, 5]
    relevant = {3, 5, 8}
    # hits at ranks 2 and 5
    dcg = 1 / math.log2(3) + 1 / math.log2(6)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert M.ndcg(ranked, relevant, 5) == pytest.approx(dcg / idcg)
    assert M.ndcg(ranked, relevant, 5) == pytest.approx(0.4776237, abs=1e-6)
    assert M.recall(ranked, relevant, 5) == pytest.approx(2 / 3)
    assert M.precision(ranked, relevant, 5) == pytest.approx(2 / 5)
    assert M.hit_rate(ranked, relevant, 1) == 0 and M.hit_rate(ranked, relevant, 2) == 1
    assert M.mrr(ranked, relevant, 5) == pytest.approx(1 / 2)
    assert M.average_precision(ranked, relevant, 5) == pytest.approx((1 / 2 + 2 / 5) / 3)
    assert M.f1(ranked, relevant, 5) == pytest.approx(2 * 0.4 * (2 / 3) / (0.4 + 2 / 3))
    # k=2: one hit at rank 2, IDCG over min(|rel|, 2) = 2 positions
    assert M.ndcg(ranked, relevant, 2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))


def test_auc_error_metrics_and_beyond_accuracy():
    scores = np.array([0.9, 0.1, 0.5, 0.3])
    assert M.auc(scores, {0, 2}, np.arange(4)) == 1.0
    assert M.auc(scores, {1}, np.arange(4)) == 0.0
    assert M.auc(np.zeros(4), {1}, np.arange(4)) == 0.5
    assert M.mae([1, 2], [2, 4]) == 1.5 and M.rmse([1, 2], [2, 4]) == pytest.approx(math.sqrt(2.5))
    assert M.catalog_coverage([[0, 1], [1, 2]], 10) == 0.3
    vecs = np.eye(3)
    assert M.intra_list_diversity([0, 1, 2], vecs) == pytest.approx(1.0)
    assert M.intra_list_diversity([0, 0], vecs) == pytest.approx(0.0)
    pop = np.array([100, 1, 10])
    assert M.novelty([1], pop, 100) == pytest.approx(math.log2(100))
    assert M.popularity_bias([0, 2], pop) == 55


ranked_lists = st.lists(st.integers(0, 50), min_size=1, max_size=30, unique=True)
relevant_sets = st.sets(st.integers(0, 50), min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(ranked_lists, relevant_sets, st.integers(1, 30))
def test_ranking_metrics_are_bounded_and_consistent(ranked, relevant, k):
    for fn in M.RANKING_METRICS.values():
        assert 0.0 <= fn(ranked, relevant, k) <= 1.0 + 1e-12
    hit = M.hit_rate(ranked, relevant, k)
    assert (M.recall(ranked, relevant, k) > 0) == bool(hit) == (M.ndcg(ranked, relevant, k) > 0)
    assert M.mrr(ranked, relevant, k) <= hit
    # more cut-off never lowers recall or hit rate
    assert M.recall(ranked, relevant, k + 1) >= M.recall(ranked, relevant, k)


@settings(max_examples=200, deadline=None)
@given(relevant_sets, st.integers(1, 30))
def test_perfect_ranking_scores_one(relevant, k):
    ranked = sorted(relevant) + [100 + i for i in range(10)]
    assert M.ndcg(ranked, relevant, k) == pytest.approx(1.0)
    assert M.average_precision(ranked, relevant, k) == pytest.approx(1.0)
    assert M.recall(ranked, relevant, k) == pytest.approx(min(len(relevant), k) / len(relevant))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=2, max_size=40), st.data())
def test_auc_complement(scores, data):
    scores = np.array(scores)
    n = len(scores)
    rel = data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n - 1))
    rest = set(range(n)) - rel
    a, b = M.auc(scores, rel, np.arange(n)), M.auc(scores, rest, np.arange(n))
    assert 0 <= a <= 1 and a + b == pytest.approx(1.0)
