"""Off-policy evaluation: a target policy's expected reward (click or like rate per shown item)
estimated from a log that another policy (the logging policy) collected.

Notation, one round ``i`` of the log: context ``x_i``, shown action (item) ``a_i`` at position
``k_i``, reward ``r_i``, the logging policy's probability of that choice ``p_i`` (propensity
score), the target policy's probability of it ``pi_i = pi(a_i | x_i, k_i)``, importance weight
``w_i = pi_i / p_i``, and optionally a reward model ``q(x, a, k)`` (an estimate of the expected
reward) for every action and position.

- IPS:   ``V = 1/n sum_i w_i r_i`` (unbiased where ``p > 0`` wherever ``pi > 0``);
- SNIPS: ``V = sum_i w_i r_i / sum_i w_i`` (self-normalised: slightly biased, lower variance;
  equals IPS when the weights average 1);
- DM:    ``V = 1/n sum_i sum_a pi(a | x_i, k_i) q(x_i, a, k_i)`` (the reward model alone);
- DR:    ``V = 1/n sum_i [sum_a pi(a | x_i, k_i) q(x_i, a, k_i) + w_i (r_i - q(x_i, a_i, k_i))]``
  (unbiased if either the propensities or the reward model are right; low variance when the
  model is good).

Intervals are percentile bootstraps over rounds (a seeded ``numpy.random.Generator``, a fixed
number of resamples). The resamples depend only on the number of rounds, the seed and their
count, so two estimates of the same log with the same settings are paired draw by draw, which
:func:`promotion_gate` uses to put an interval on the difference between two policies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from avrec.errors import AvrecError

Kind = Literal["ips", "snips", "dm", "dr"]
KINDS: tuple[Kind, ...] = ("ips", "snips", "dm", "dr")
N_BOOTSTRAP = 1000
ALPHA = 0.05
_CHUNK = 2_000_000  # resampled rounds gathered at once (bounds the memory of the bootstrap)


class BanditLogError(AvrecError, ValueError):
    """A bandit log, a target policy or a reward model that cannot be used as given."""


@dataclass(eq=False)
class BanditLog:
    """Logged bandit feedback, one entry per round (one item shown at one position); the
    arrays are checked and converted once, when the log is made, and not changed after.

    ``action``: item index in ``[0, n_actions)``; ``reward``: observed reward (click 0/1);
    ``pscore``: the logging policy's probability of showing that item at that position, in
    ``(0, 1]``; ``position``: slot index in ``[0, n_positions)`` (all 0 when omitted).
    """

    action: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    position: np.ndarray | None = None
    n_actions: int | None = None
    n_positions: int | None = None

    def __post_init__(self) -> None:
        action = _int_array(self.action, "action")
        n = len(action)
        if n == 0:
            raise BanditLogError("the bandit log is empty")
        position = (
            np.zeros(n, dtype=np.int64)
            if self.position is None
            else _int_array(self.position, "position")
        )
        reward = _float_array(self.reward, "reward")
        pscore = _float_array(self.pscore, "pscore")
        for name, arr in (("reward", reward), ("pscore", pscore), ("position", position)):
            if len(arr) != n:
                raise BanditLogError(f"{name} has {len(arr)} rounds, action has {n}")
        bad = np.flatnonzero((pscore <= 0) | (pscore > 1))
        if len(bad):
            raise BanditLogError(
                f"pscore must be in (0, 1]: {len(bad)} round(s) outside, first round {bad[0]} "
                f"has {pscore[bad[0]]!r} (a zero propensity means the logging policy could not "
                "have shown that item, so the log cannot be reweighted)"
            )
        n_actions = int(action.max()) + 1 if self.n_actions is None else int(self.n_actions)
        n_positions = int(position.max()) + 1 if self.n_positions is None else int(self.n_positions)
        for name, arr, limit in (
            ("action", action, n_actions),
            ("position", position, n_positions),
        ):
            if arr.min() < 0 or arr.max() >= limit:
                raise BanditLogError(
                    f"{name} must be in [0, {limit}), got {arr.min()}..{arr.max()}"
                )
        self.action, self.reward, self.pscore, self.position = action, reward, pscore, position
        self.n_actions, self.n_positions = n_actions, n_positions

    @property
    def n_rounds(self) -> int:
        return len(self.action)

    def digest(self) -> str:
        """A short fingerprint of the rounds (tells whether two estimates share a log)."""
        h = hashlib.sha1()
        for arr in (self.action, self.position, self.reward, self.pscore):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]


@dataclass(frozen=True)
class Estimate:
    """A policy value with its percentile bootstrap interval ``[low, high]`` at level
    ``1 - alpha``. ``draws`` are the bootstrap values; ``pairing`` names the log and the
    resamples, so estimates with equal pairing were resampled round for round alike."""

    kind: str
    value: float
    low: float
    high: float
    alpha: float
    draws: np.ndarray = field(repr=False, compare=False)
    pairing: tuple[str, int, int, int] = field(repr=False)

    def contains(self, truth: float) -> bool:
        return self.low <= truth <= self.high


@dataclass(frozen=True)
class GateReport:
    """The promotion gate's answer: ``passed`` and why, in one human-readable sentence."""

    passed: bool
    difference: float
    low: float
    high: float
    margin: float
    paired: bool
    reason: str


def logged_probability(log: BanditLog, target: np.ndarray) -> np.ndarray:
    """``pi(a_i | x_i, k_i)`` per round from a target given as those probabilities ``[n]``,
    per action ``[n, n_actions]`` or per action and position ``[n, n_actions, n_positions]``."""
    target = _check_target(log, target)
    rows = np.arange(log.n_rounds)
    if target.ndim == 1:
        return target
    if target.ndim == 2:
        return target[rows, log.action]
    return target[rows, log.action, log.position]


def on_policy(
    log: BanditLog, *, n_bootstrap: int = N_BOOTSTRAP, alpha: float = ALPHA, seed: int = 0
) -> Estimate:
    """The logging policy's own value: the mean reward of the log, with its interval."""
    ones = np.ones(log.n_rounds)
    return _bootstrap("on-policy", log, log.reward, ones, n_bootstrap, alpha, seed)


def estimate(
    kind: Kind,
    log: BanditLog,
    target: np.ndarray,
    q_hat: np.ndarray | None = None,
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    alpha: float = ALPHA,
    seed: int = 0,
) -> Estimate:
    """The target policy's value by ``kind`` (``ips``, ``snips``, ``dm``, ``dr``; formulas in
    the module docstring) with a ``1 - alpha`` percentile bootstrap interval.

    ``target``: see :func:`logged_probability`; ``dm`` and ``dr`` need the full distribution
    and ``q_hat`` of the same shape (the reward model's estimate for every action [and
    position] of every round)."""
    if kind not in KINDS:
        raise BanditLogError(f"unknown estimator {kind!r}; expected one of {', '.join(KINDS)}")
    pi = logged_probability(log, target)
    w = pi / log.pscore
    ones = np.ones(log.n_rounds)
    if kind == "ips":
        return _bootstrap(kind, log, w * log.reward, ones, n_bootstrap, alpha, seed)
    if kind == "snips":
        return _bootstrap(kind, log, w * log.reward, w, n_bootstrap, alpha, seed)
    expected, q_logged = _reward_model_terms(log, np.asarray(target, dtype=float), q_hat, kind)
    terms = expected if kind == "dm" else expected + w * (log.reward - q_logged)
    return _bootstrap(kind, log, terms, ones, n_bootstrap, alpha, seed)


def promotion_gate(candidate: Estimate, serving: Estimate, *, margin: float = 0.0) -> GateReport:
    """Whether ``candidate`` is not significantly worse than ``serving``: the lower end of the
    ``1 - alpha`` bootstrap interval of ``candidate - serving`` must be at least ``-margin``
    (a non-inferiority test, margin in reward units). The difference is taken draw by draw:
    paired when both estimates resampled the same log alike (same log, seed and count),
    otherwise as two independent bootstraps."""
    if margin < 0 or not np.isfinite(margin):
        raise BanditLogError(f"margin must be a finite number >= 0, got {margin!r}")
    if len(candidate.draws) != len(serving.draws) or candidate.alpha != serving.alpha:
        raise BanditLogError(
            "the two estimates must use the same number of bootstrap resamples and alpha "
            f"({len(candidate.draws)}/{candidate.alpha} vs {len(serving.draws)}/{serving.alpha})"
        )
    alpha = candidate.alpha
    paired = candidate.pairing == serving.pairing
    diff = candidate.draws - serving.draws
    low, high = (float(v) for v in np.quantile(diff, [alpha / 2, 1 - alpha / 2]))
    point = candidate.value - serving.value
    how = "paired" if paired else "independent"
    level = f"{1 - alpha:.0%}"
    shown = (
        f"candidate {candidate.value:.5f} ({candidate.kind}) vs serving {serving.value:.5f} "
        f"({serving.kind}): difference {point:+.5f}, {level} interval [{low:+.5f}, {high:+.5f}] "
        f"({how} bootstrap, {len(diff)} resamples)"
    )
    passed = low >= -margin
    if passed:
        verdict = f"not significantly worse (lower end {low:+.5f} >= -margin {-margin:.5f})"
    elif high < 0:
        verdict = f"significantly worse (whole interval below 0, margin {margin:.5f})"
    else:
        verdict = (
            f"inconclusive: a loss larger than the margin {margin:.5f} cannot be ruled out "
            f"(lower end {low:+.5f}); more logged rounds would narrow the interval"
        )
    reason = f"{'promote' if passed else 'keep serving'}: {verdict}; {shown}"
    return GateReport(passed, point, low, high, margin, paired, reason)


def cross_fitted_table(
    log: BanditLog, *, n_folds: int = 2, prior_strength: float = 10.0, seed: int = 0
) -> np.ndarray:
    """A reward model for DM/DR: per round, the mean reward of every (action, position) pair,
    ``q[i, a, k] = (sum_r + s * m_k) / (count + s)`` shrunk by ``s = prior_strength`` towards
    the mean reward ``m_k`` at position ``k``. Cross-fitted: round ``i``'s table is counted on
    the other folds only (rounds split at random, seeded), so the reward model never saw the
    reward it corrects. Ignores the context. Returns ``[n, n_actions, n_positions]``."""
    if n_folds < 2 or n_folds > log.n_rounds:
        raise BanditLogError(f"n_folds must be in [2, {log.n_rounds}], got {n_folds}")
    if prior_strength <= 0:
        raise BanditLogError(f"prior_strength must be > 0, got {prior_strength}")
    a, p = int(log.n_actions or 0), int(log.n_positions or 0)
    fold = np.random.default_rng(seed).permutation(log.n_rounds) % n_folds
    cell = log.action * p + log.position
    q_hat = np.empty((log.n_rounds, a, p))
    for f in range(n_folds):
        train = fold != f
        sums = np.bincount(cell[train], log.reward[train], minlength=a * p).reshape(a, p)
        counts = np.bincount(cell[train], minlength=a * p).reshape(a, p)
        shown = counts.sum(axis=0)
        prior = np.divide(sums.sum(axis=0), shown, out=np.zeros(p), where=shown > 0)
        q_hat[~train] = (sums + prior_strength * prior) / (counts + prior_strength)
    return q_hat


def _bootstrap(
    kind: str,
    log: BanditLog,
    num: np.ndarray,
    den: np.ndarray,
    n_bootstrap: int,
    alpha: float,
    seed: int,
) -> Estimate:
    """``sum(num) / sum(den)`` and its percentile interval over ``n_bootstrap`` resamples of
    the rounds with replacement."""
    if not isinstance(n_bootstrap, int | np.integer) or n_bootstrap < 1:
        raise BanditLogError(f"n_bootstrap must be a positive integer, got {n_bootstrap!r}")
    if not 0 < alpha < 1:
        raise BanditLogError(f"alpha must be in (0, 1), got {alpha!r}")
    n = len(num)
    value = _ratio(num.sum(), den.sum())
    rng = np.random.default_rng(seed)
    draws = np.empty(n_bootstrap)
    step = max(1, _CHUNK // n)
    for start in range(0, n_bootstrap, step):
        idx = rng.integers(0, n, size=(min(step, n_bootstrap - start), n))
        draws[start : start + len(idx)] = _ratio(num[idx].sum(axis=1), den[idx].sum(axis=1))
    low, high = (float(v) for v in np.quantile(draws, [alpha / 2, 1 - alpha / 2]))
    pairing = (log.digest(), n, int(seed), int(n_bootstrap))
    return Estimate(kind, float(value), low, high, float(alpha), draws, pairing)


def _ratio(num, den):
    # a resample whose weights all vanish (SNIPS) has no defined value: 0 by convention
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1), 0.0)


def _reward_model_terms(
    log: BanditLog, target: np.ndarray, q_hat: np.ndarray | None, kind: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per round: ``sum_a pi(a | x_i, k_i) q(x_i, a, k_i)`` and ``q(x_i, a_i, k_i)``."""
    if target.ndim == 1:
        raise BanditLogError(
            f"{kind} needs the target policy's full distribution [n, n_actions(, n_positions)], "
            "not only the probability of the logged action"
        )
    if q_hat is None:
        raise BanditLogError(f"{kind} needs a reward model: q_hat of the target's shape")
    q_hat = np.asarray(q_hat, dtype=float)
    if q_hat.shape != target.shape:
        raise BanditLogError(f"q_hat has shape {q_hat.shape}, the target has {target.shape}")
    if not np.isfinite(q_hat).all():
        raise BanditLogError("q_hat has NaN or infinite values")
    rows = np.arange(log.n_rounds)
    if target.ndim == 3:
        target = target[rows, :, log.position]
        q_hat = q_hat[rows, :, log.position]
    return (target * q_hat).sum(axis=1), q_hat[rows, log.action]


def _check_target(log: BanditLog, target: np.ndarray) -> np.ndarray:
    target = np.asarray(target, dtype=float)
    n, a, p = log.n_rounds, log.n_actions, log.n_positions
    shapes = {1: (n,), 2: (n, a), 3: (n, a, p)}
    if target.ndim not in shapes or target.shape != shapes[target.ndim]:
        raise BanditLogError(
            f"target probabilities have shape {target.shape}; expected ({n},) for the logged "
            f"action, ({n}, {a}) per action or ({n}, {a}, {p}) per action and position"
        )
    if not np.isfinite(target).all() or target.min() < 0 or target.max() > 1:
        raise BanditLogError("target probabilities must be finite and in [0, 1]")
    if target.ndim > 1:
        sums = target.sum(axis=1)
        worst = float(np.abs(sums - 1).max())
        if worst > 1e-6:
            raise BanditLogError(
                f"target probabilities must sum to 1 over the actions of each round "
                f"(and position); the furthest sum is off by {worst:.3g}"
            )
    return target


def _int_array(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise BanditLogError(f"{name} must be one-dimensional, got shape {arr.shape}")
    whole = np.issubdtype(arr.dtype, np.integer) or (
        np.issubdtype(arr.dtype, np.floating) and bool(np.all(np.mod(arr, 1) == 0))
    )
    if arr.size and not whole:
        raise BanditLogError(f"{name} must hold integer indices")
    return arr.astype(np.int64)


def _float_array(values, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise BanditLogError(f"{name} must hold numbers: {exc}") from None
    if arr.ndim != 1:
        raise BanditLogError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise BanditLogError(f"{name} has NaN or infinite values")
    return arr
