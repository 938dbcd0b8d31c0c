"""Serving policies: what they show and the propensities they log, checked against their
empirical frequencies and through off-policy evaluation with a known truth."""

from __future__ import annotations

import numpy as np
import pytest

from avrec.evaluation.ope import BanditLog, estimate
from avrec.rerank.exploration import Policy, PolicyError, serve

ITEMS = [f"i{n}" for n in range(8)]
SCORES = np.linspace(1.0, 0.3, 8)


def test_greedy_shows_the_top_k_with_probability_one():
    picked, props = serve(ITEMS, SCORES, 3, Policy(), np.random.default_rng(0))
    assert picked == [0, 1, 2] and props.tolist() == [1.0, 1.0, 1.0]
    picked, _ = serve(ITEMS, SCORES, 3, Policy("epsilon", 0.0), np.random.default_rng(0))
    assert picked == [0, 1, 2]


@pytest.mark.parametrize("policy", [Policy("epsilon", 0.3, pool=5), Policy("softmax", 0.5, 5)])
def test_logged_propensities_match_the_frequencies(policy):
    rng = np.random.default_rng(1)
    first: dict[int, list[float]] = {}
    second_after_top: dict[int, list[float]] = {}
    runs = 8_000
    for _ in range(runs):
        picked, props = serve(ITEMS, SCORES, 3, policy, rng)
        assert len(set(picked)) == 3 and max(picked) < 5  # no repeats, inside the pool
        assert np.all((props > 0) & (props <= 1))
        first.setdefault(picked[0], []).append(props[0])
        if picked[0] == 0:
            second_after_top.setdefault(picked[1], []).append(props[1])
    for logged in first.values():
        assert np.ptp(logged) < 1e-12  # the first place's propensity depends on the item only
        assert abs(len(logged) / runs - logged[0]) < 0.02
    n_top = len(first[0])
    for logged in second_after_top.values():
        assert abs(len(logged) / n_top - logged[0]) < 0.03


def test_same_seed_same_lists():
    a = [serve(ITEMS, SCORES, 4, Policy("softmax", 1.0), np.random.default_rng(7)) for _ in "ab"]
    assert a[0][0] == a[1][0] and np.array_equal(a[0][1], a[1][1])


def test_the_log_estimates_the_greedy_policy_off_policy():
    """Clicks with known probabilities on a list served epsilon-greedily: IPS over the first
    place recovers the greedy policy's click rate (the top item's), inside its interval."""
    rng = np.random.default_rng(3)
    ctr = np.array([0.30, 0.05, 0.20, 0.10, 0.15])
    actions, rewards, pscores = [], [], []
    for _ in range(10_000):
        picked, props = serve(ITEMS[:5], SCORES[:5], 2, Policy("epsilon", 0.5), rng)
        actions.append(picked[0])
        pscores.append(props[0])
        rewards.append(float(rng.random() < ctr[picked[0]]))
    log = BanditLog(np.array(actions), np.array(rewards), np.array(pscores), n_actions=5)
    greedy = (np.array(actions) == 0).astype(float)  # the target's probability of the logged item
    est = estimate("ips", log, greedy, n_bootstrap=300, seed=0)
    assert est.contains(ctr[0]) and abs(est.value - ctr[0]) < 0.02
    assert abs(np.mean(rewards) - ctr[0]) > 0.05  # the log's own click rate is not the answer


def test_policies_that_cannot_be_used_are_refused():
    for bad in (("random", 0.1), ("epsilon", 1.5), ("softmax", 0.0)):
        with pytest.raises(PolicyError):
            Policy(*bad)
    with pytest.raises(PolicyError):
        Policy("epsilon", 0.1, pool=0)
