"""Off-policy estimators on synthetic bandit logs with a known truth: IPS unbiased, SNIPS and
IPS agree when the weights average 1, DR exact with a perfect model, the on-policy case, the
interval, bad input, and the promotion gate."""

from __future__ import annotations

import numpy as np
import pytest

from avrec.errors import AvrecError
from avrec.evaluation import ope
from avrec.evaluation.open_bandit import load_open_bandit

N_ACTIONS = 4
CLICK = np.array([0.1, 0.3, 0.5, 0.2])  # true click rate per action (no context)
LOGGING = np.array([0.4, 0.3, 0.2, 0.1])
TARGET = np.array([0.1, 0.2, 0.6, 0.1])
TRUTH = float(TARGET @ CLICK)  # 0.41


def _log(seed: int, n: int = 500, rewards: np.ndarray | None = None) -> ope.BanditLog:
    rng = np.random.default_rng(seed)
    action = rng.choice(N_ACTIONS, size=n, p=LOGGING)
    reward = (rng.random(n) < CLICK[action]).astype(float) if rewards is None else rewards[action]
    return ope.BanditLog(action=action, reward=reward, pscore=LOGGING[action], n_actions=N_ACTIONS)


def _target(log: ope.BanditLog, probs: np.ndarray = TARGET) -> np.ndarray:
    return np.tile(probs, (log.n_rounds, 1))


def test_ips_is_unbiased_over_many_logs():
    values = [
        ope.estimate("ips", log, _target(log), n_bootstrap=1).value
        for log in (_log(s) for s in range(300))
    ]
    # sd of one estimate is about 0.04, so the mean of 300 is within ~0.0025 of the truth
    assert np.mean(values) == pytest.approx(TRUTH, abs=0.008)


def test_target_as_logged_probability_or_full_distribution_agree():
    log = _log(0)
    full = ope.estimate("ips", log, _target(log), n_bootstrap=50)
    logged = ope.estimate("ips", log, TARGET[log.action], n_bootstrap=50)
    assert full.value == logged.value and np.array_equal(full.draws, logged.draws)


def test_snips_equals_ips_when_weights_average_one():
    # two rounds per action with the logging policy uniform and the target putting its mass
    # so that the weights sum to n
    action = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    log = ope.BanditLog(
        action=action,
        reward=np.array([1, 0, 0, 1, 1, 1, 0, 0], float),
        pscore=np.full(8, 0.25),
        n_actions=N_ACTIONS,
    )
    w = ope.logged_probability(log, _target(log)) / log.pscore
    assert w.mean() == pytest.approx(1.0)
    ips = ope.estimate("ips", log, _target(log), n_bootstrap=10)
    snips = ope.estimate("snips", log, _target(log), n_bootstrap=10)
    assert snips.value == pytest.approx(ips.value)


def test_dr_with_a_perfect_reward_model_has_no_variance_from_the_rewards():
    # deterministic rewards and q_hat equal to them: the correction term vanishes, DR equals
    # the model's value on every log and its interval collapses to the truth
    rewards = np.array([0.0, 1.0, 1.0, 0.0])
    truth = float(TARGET @ rewards)
    dr, ips = [], []
    for s in range(20):
        log = _log(s, rewards=rewards)
        q_hat = np.tile(rewards, (log.n_rounds, 1))
        e = ope.estimate("dr", log, _target(log), q_hat, n_bootstrap=100, seed=s)
        assert e.value == pytest.approx(truth) and e.high - e.low == pytest.approx(0, abs=1e-12)
        dr.append(e.value)
        ips.append(ope.estimate("ips", log, _target(log), n_bootstrap=1).value)
    assert np.std(dr) < 1e-12 < np.std(ips)


def test_dr_with_a_wrong_model_is_still_corrected_by_the_weights():
    values = []
    for s in range(200):
        log = _log(s)
        q_hat = np.full((log.n_rounds, N_ACTIONS), 0.9)  # far off
        values.append(ope.estimate("dr", log, _target(log), q_hat, n_bootstrap=1).value)
    assert np.mean(values) == pytest.approx(TRUTH, abs=0.01)


def test_on_policy_target_gives_the_plain_mean():
    log = _log(3)
    plain = float(log.reward.mean())
    assert ope.on_policy(log, n_bootstrap=10).value == pytest.approx(plain)
    for kind in ("ips", "snips"):
        assert ope.estimate(kind, log, _target(log, LOGGING), n_bootstrap=10).value == (
            pytest.approx(plain)
        )


def test_interval_holds_the_truth_and_is_reproducible():
    log = _log(7, n=2000)
    a = ope.estimate("snips", log, _target(log), n_bootstrap=500, seed=1)
    b = ope.estimate("snips", log, _target(log), n_bootstrap=500, seed=1)
    assert a.low < a.value < a.high and a.contains(TRUTH)
    assert (a.low, a.high) == (b.low, b.high)
    c = ope.estimate("snips", log, _target(log), n_bootstrap=500, seed=2)
    assert (a.low, a.high) != (c.low, c.high)


def test_interval_coverage_over_seeded_logs():
    hits = [
        ope.estimate("ips", log, _target(log), n_bootstrap=200, seed=s).contains(TRUTH)
        for s, log in ((s, _log(100 + s)) for s in range(60))
    ]
    assert 0.85 <= np.mean(hits) <= 1.0


def test_positions_pick_the_target_of_the_logged_slot():
    # two positions; the target differs per position, so the logged slot must be used
    log = ope.BanditLog(
        action=np.array([0, 1]),
        position=np.array([0, 1]),
        reward=np.array([1.0, 1.0]),
        pscore=np.array([0.5, 0.5]),
    )
    target = np.zeros((2, 2, 2))
    target[:, 0, 0] = target[:, 1, 0] = 0.5  # position 0: uniform
    target[:, 1, 1] = 1.0  # position 1: always action 1
    assert ope.logged_probability(log, target).tolist() == [0.5, 1.0]
    q_hat = np.ones((2, 2, 2))
    assert ope.estimate("dm", log, target, q_hat, n_bootstrap=5).value == pytest.approx(1.0)


def test_cross_fitted_table_never_sees_its_own_round():
    log = ope.BanditLog(action=np.zeros(4, int), reward=np.array([1.0, 0, 0, 0]), pscore=np.ones(4))
    q = ope.cross_fitted_table(log, n_folds=4, prior_strength=1e-9)
    # the clicked round's table holds only the three unclicked rounds, and vice versa
    assert q[0, 0, 0] == pytest.approx(0.0) and q[1:, 0, 0] == pytest.approx([1 / 3] * 3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pscore": np.array([0.5, 0.0, 0.5])}, "pscore must be in"),
        ({"pscore": np.array([0.5, -0.1, 0.5])}, "pscore must be in"),
        ({"pscore": np.array([0.5, 1.5, 0.5])}, "pscore must be in"),
        ({"reward": np.array([1.0, 0.0])}, "reward has 2 rounds"),
        ({"reward": np.array([1.0, np.nan, 0.0])}, "NaN"),
        ({"action": np.array([0.5, 1, 2])}, "integer"),
        ({"action": np.array([0, 1, 5])}, r"action must be in \[0, 4\)"),
        ({"action": np.array([], int), "reward": [], "pscore": []}, "empty"),
        ({"position": np.array([0, 0])}, "position has 2 rounds"),
    ],
)
def test_bad_logs_are_refused(change, message):
    fields = {
        "action": np.array([0, 1, 2]),
        "reward": np.array([1.0, 0.0, 1.0]),
        "pscore": np.array([0.5, 0.5, 0.5]),
        "n_actions": N_ACTIONS,
    } | change
    with pytest.raises(AvrecError, match=message):
        ope.BanditLog(**fields)


@pytest.mark.parametrize(
    ("target", "q_hat", "kind", "message"),
    [
        (np.ones((3, 3)) / 3, None, "ips", "shape"),
        (np.full((2, N_ACTIONS), 0.25), None, "ips", "shape"),
        (np.array([0.5, 1.2, 0.1]), None, "ips", r"in \[0, 1\]"),
        (np.array([0.5, -0.2, 0.1]), None, "snips", r"in \[0, 1\]"),
        (np.full((3, N_ACTIONS), 0.3), None, "ips", "sum to 1"),
        (np.array([0.5, 0.5, 0.5]), None, "dr", "full distribution"),
        (np.full((3, N_ACTIONS), 0.25), None, "dr", "needs a reward model"),
        (np.full((3, N_ACTIONS), 0.25), np.zeros((3, 2)), "dr", "q_hat has shape"),
        (np.full((3, N_ACTIONS), 0.25), None, "magic", "unknown estimator"),
    ],
)
def test_bad_targets_and_models_are_refused(target, q_hat, kind, message):
    log = ope.BanditLog(
        action=np.array([0, 1, 2]), reward=np.ones(3), pscore=np.full(3, 0.5), n_actions=4
    )
    with pytest.raises(AvrecError, match=message):
        ope.estimate(kind, log, target, q_hat, n_bootstrap=5)


def test_bad_bootstrap_settings_are_refused():
    log = _log(0, n=20)
    with pytest.raises(AvrecError, match="n_bootstrap"):
        ope.estimate("ips", log, _target(log), n_bootstrap=0)
    with pytest.raises(AvrecError, match="alpha"):
        ope.estimate("ips", log, _target(log), alpha=1.5)


def test_gate_accepts_an_equal_candidate_and_refuses_a_clearly_worse_one():
    log = _log(11, n=2000)
    serving = ope.on_policy(log, n_bootstrap=400)
    same = ope.estimate("ips", log, _target(log, LOGGING), n_bootstrap=400)
    report = ope.promotion_gate(same, serving)
    assert report.passed and report.paired and report.difference == pytest.approx(0)
    assert report.reason.startswith("promote: not significantly worse")

    worse_policy = np.array([0.7, 0.1, 0.0, 0.2])  # value 0.14 against the logging's 0.25
    worse = ope.estimate("snips", log, _target(log, worse_policy), n_bootstrap=400)
    report = ope.promotion_gate(worse, serving, margin=0.02)
    assert not report.passed and report.high < 0
    assert "significantly worse" in report.reason and "keep serving" in report.reason


def test_gate_with_a_margin_accepts_an_equally_good_but_different_policy():
    # same value as the logging policy (0.25) by another mix of actions
    log = _log(12, n=4000)
    other = np.array([0.3, 0.35, 0.15, 0.2])
    assert float(other @ CLICK) == pytest.approx(float(LOGGING @ CLICK))
    serving = ope.on_policy(log, n_bootstrap=400)
    candidate = ope.estimate("snips", log, _target(log, other), n_bootstrap=400)
    assert ope.promotion_gate(candidate, serving, margin=0.03).passed
    # with no margin a small loss cannot be ruled out: refused as inconclusive, not as worse
    strict = ope.promotion_gate(candidate, serving, margin=0.0)
    assert not strict.passed and strict.low < 0 < strict.high
    assert "inconclusive" in strict.reason


def test_gate_refuses_mismatched_estimates():
    log = _log(0, n=50)
    a = ope.on_policy(log, n_bootstrap=10)
    b = ope.on_policy(log, n_bootstrap=20)
    with pytest.raises(AvrecError, match="same number of bootstrap"):
        ope.promotion_gate(a, b)
    with pytest.raises(AvrecError, match="margin"):
        ope.promotion_gate(a, a, margin=-1)
    c = ope.on_policy(_log(1, n=50), n_bootstrap=10)
    assert not ope.promotion_gate(a, c, margin=1.0).paired


def _write_obd(path, rows: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(",timestamp,item_id,position,click,propensity_score,user_feature_0\n" + rows)


def test_open_bandit_loader_reads_both_layouts(tmp_path):
    rows = "0,t,2,1,0,0.5,a\n1,t,0,3,1,0.25,b\n"
    _write_obd(tmp_path / "sample" / "bts" / "all.csv", rows)
    _write_obd(tmp_path / "full" / "random" / "men" / "men.csv", rows)
    (tmp_path / "full" / "random" / "men" / "item_context.csv").write_text(
        ",item_id\n" + "".join(f"{i},{i}\n" for i in range(5))
    )
    small = load_open_bandit(tmp_path / "sample", "bts")
    assert small.log.action.tolist() == [2, 0] and small.log.position.tolist() == [0, 2]
    assert small.log.n_actions == 3 and small.log.reward.tolist() == [0.0, 1.0]
    full = load_open_bandit(tmp_path / "full", "random", "men")
    assert full.log.n_actions == 5 and "user_feature_0" in full.frame.columns


def test_open_bandit_loader_refuses_bad_input(tmp_path):
    with pytest.raises(AvrecError, match="unknown behavior policy"):
        load_open_bandit(tmp_path, "greedy")
    with pytest.raises(AvrecError, match="no Open Bandit log"):
        load_open_bandit(tmp_path, "bts")
    (tmp_path / "bts").mkdir()
    (tmp_path / "bts" / "all.csv").write_text(",item_id,position,click\n0,1,1,0\n")
    with pytest.raises(AvrecError, match="missing column"):
        load_open_bandit(tmp_path, "bts")
    _write_obd(tmp_path / "bts" / "all.csv", "0,t,1,1,0,0.0,a\n")
    with pytest.raises(AvrecError, match="pscore must be in"):
        load_open_bandit(tmp_path, "bts")


def test_estimators_match_hand_computed_values():
    # rounds: (action, reward, pscore); target [0.5, 0.5] in every round; q_hat [0.2, 0.6]
    log = ope.BanditLog(
        action=np.array([0, 1, 1]),
        reward=np.array([1.0, 0.0, 1.0]),
        pscore=np.array([0.25, 0.5, 1.0]),
    )
    target, q_hat = np.full((3, 2), 0.5), np.tile([0.2, 0.6], (3, 1))
    w = np.array([2.0, 1.0, 0.5])
    value = {k: ope.estimate(k, log, target, q_hat, n_bootstrap=5).value for k in ope.KINDS}
    assert value["ips"] == pytest.approx((2.0 + 0 + 0.5) / 3)
    assert value["snips"] == pytest.approx(2.5 / w.sum())
    assert value["dm"] == pytest.approx(0.4)
    correction = w * (log.reward - np.array([0.2, 0.6, 0.6]))
    assert value["dr"] == pytest.approx(0.4 + correction.mean())
