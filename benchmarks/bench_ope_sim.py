"""A contextual bandit where the truth is known, for the off-policy estimators of
avrec.evaluation.ope: bias, RMSE and interval coverage over many seeded logs.

A fixed pool of contexts (drawn uniformly each round), click probability
``sigmoid(x . theta_a + b_a)``; the logging policy is a softmax over a noisy copy of the true
logits mixed with 5% uniform; the target policies are sharper softmaxes over the true logits
(a better one) or over their negation (a worse one). The target's value is exact: the mean over
the pool of ``sum_a pi(a | x) p(x, a)``. Run alone it prints the tables;
benchmarks/bench_ope.py writes them to docs/benchmarks.md.

    .venv/bin/python -m benchmarks.bench_ope_sim [--logs 200] [--rounds 2000]
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from sklearn.linear_model import LogisticRegression

from avrec.evaluation import ope

N_ACTIONS, DIM, POOL = 10, 5, 1_000
ESTIMATORS = ("ips", "snips", "dm-logistic", "dr-table", "dr-logistic", "dr-true-model")


@dataclass(frozen=True)
class World:
    contexts: np.ndarray  # [POOL, DIM]
    click: np.ndarray  # [POOL, N_ACTIONS] true click probabilities
    logging: np.ndarray  # [POOL, N_ACTIONS]
    better: np.ndarray  # [POOL, N_ACTIONS] target policy
    worse: np.ndarray  # [POOL, N_ACTIONS] a clearly worse candidate

    def value(self, policy: np.ndarray) -> float:
        return float((policy * self.click).sum(axis=1).mean())


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def make_world(seed: int = 0) -> World:
    rng = np.random.default_rng(seed)
    contexts = rng.normal(size=(POOL, DIM))
    theta = rng.normal(scale=0.3, size=(DIM, N_ACTIONS))
    bias = rng.uniform(-3.5, -2.0, size=N_ACTIONS)  # base click rates of about 3% to 12%
    logits = contexts @ theta + bias
    click = 1 / (1 + np.exp(-logits))
    noisy = logits + rng.normal(scale=1.0, size=logits.shape)
    logging = 0.95 * _softmax(noisy) + 0.05 / N_ACTIONS
    return World(contexts, click, logging, _softmax(2.0 * logits), _softmax(-2.0 * logits))


def draw_log(world: World, n_rounds: int, seed: int) -> tuple[np.ndarray, ope.BanditLog]:
    """Rounds' context indices and the log the logging policy collected."""
    rng = np.random.default_rng(seed)
    ctx = rng.integers(0, POOL, size=n_rounds)
    cum = world.logging[ctx].cumsum(axis=1)
    action = np.minimum((rng.random(n_rounds)[:, None] > cum).sum(axis=1), N_ACTIONS - 1)
    reward = (rng.random(n_rounds) < world.click[ctx, action]).astype(float)
    pscore = world.logging[ctx, action]
    return ctx, ope.BanditLog(action=action, reward=reward, pscore=pscore, n_actions=N_ACTIONS)


def logistic_q(world: World, ctx: np.ndarray, log: ope.BanditLog, seed: int) -> np.ndarray:
    """Cross-fitted (2 folds) logistic regression on action one-hot x [1, context]: the
    predicted click probability of every action for every round, ``[n, N_ACTIONS]``."""

    def features(c: np.ndarray, a: np.ndarray) -> np.ndarray:
        x = np.hstack([np.ones((len(c), 1)), world.contexts[c]])
        out = np.zeros((len(c), N_ACTIONS, DIM + 1))
        out[np.arange(len(c)), a] = x
        return out.reshape(len(c), -1)

    fold = np.random.default_rng(seed).permutation(log.n_rounds) % 2
    q = np.empty((log.n_rounds, N_ACTIONS))
    for f in (0, 1):
        train, test = fold != f, fold == f
        model = LogisticRegression(C=1.0, max_iter=500)
        model.fit(features(ctx[train], log.action[train]), log.reward[train])
        c = np.repeat(ctx[test], N_ACTIONS)
        a = np.tile(np.arange(N_ACTIONS), test.sum())
        q[test] = model.predict_proba(features(c, a))[:, 1].reshape(-1, N_ACTIONS)
    return q


def estimates(world: World, n_rounds: int, seed: int, n_bootstrap: int) -> dict:
    """Every estimator's value of the better target on one log, and the promotion gate's
    answers for the better and the worse candidate against the logging policy."""
    ctx, log = draw_log(world, n_rounds, seed)
    target = world.better[ctx]
    q_log = logistic_q(world, ctx, log, seed)
    q_table = ope.cross_fitted_table(log, seed=seed)[:, :, 0]
    boot = {"n_bootstrap": n_bootstrap, "seed": seed}
    out = {
        "ips": ope.estimate("ips", log, target, **boot),
        "snips": ope.estimate("snips", log, target, **boot),
        "dm-logistic": ope.estimate("dm", log, target, q_log, **boot),
        "dr-table": ope.estimate("dr", log, target, q_table, **boot),
        "dr-logistic": ope.estimate("dr", log, target, q_log, **boot),
        "dr-true-model": ope.estimate("dr", log, target, world.click[ctx], **boot),
    }
    serving = ope.on_policy(log, **boot)
    worse = ope.estimate("dr", log, world.worse[ctx], q_log, **boot)
    gate = {
        "better": ope.promotion_gate(out["dr-logistic"], serving).passed,
        "worse": ope.promotion_gate(worse, serving).passed,
    }
    return {"est": out, "gate": gate}


def simulate(n_logs: int, n_rounds: int, n_bootstrap: int, world_seed: int = 0) -> dict:
    world = make_world(world_seed)
    truth = world.value(world.better)
    runs = [estimates(world, n_rounds, 1_000 + s, n_bootstrap) for s in range(n_logs)]
    rows = {}
    for name in ESTIMATORS:
        est = [r["est"][name] for r in runs]
        values = np.array([e.value for e in est])
        rows[name] = {
            "mean": float(values.mean()),
            "bias": float(values.mean() - truth),
            "sd": float(values.std(ddof=1)),
            "rmse": float(np.sqrt(((values - truth) ** 2).mean())),
            "coverage": float(np.mean([e.contains(truth) for e in est])),
            "width": float(np.mean([e.high - e.low for e in est])),
        }
    return {
        "truth": truth,
        "logging": world.value(world.logging),
        "worse": world.value(world.worse),
        "rows": rows,
        "gate_better": float(np.mean([r["gate"]["better"] for r in runs])),
        "gate_worse": float(np.mean([r["gate"]["worse"] for r in runs])),
        "n_logs": n_logs,
        "n_rounds": n_rounds,
        "n_bootstrap": n_bootstrap,
    }


def table(sim: dict) -> str:
    lines = [
        f"Truth (target policy's exact value): {sim['truth']:.4f}; logging policy "
        f"{sim['logging']:.4f}; worse candidate {sim['worse']:.4f}. {sim['n_logs']} logs of "
        f"{sim['n_rounds']:,} rounds (seeds 1000..{999 + sim['n_logs']}), {sim['n_bootstrap']} "
        "bootstrap resamples each, 95% percentile intervals.\n",
        "| estimator | mean | bias | sd | RMSE | 95% coverage | mean interval width |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in sim["rows"].items():
        lines.append(
            f"| {name} | {r['mean']:.4f} | {r['bias']:+.4f} | {r['sd']:.4f} | {r['rmse']:.4f} "
            f"| {r['coverage']:.1%} | {r['width']:.4f} |"
        )
    lines.append(
        f"\nPromotion gate (DR with the logistic model vs the logging policy's on-policy mean, "
        f"paired bootstrap, margin 0): the better target promoted in {sim['gate_better']:.1%} "
        f"of the logs, the worse candidate in {sim['gate_worse']:.1%}."
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2_000)
    ap.add_argument("--bootstrap", type=int, default=1_000)
    args = ap.parse_args()
    print(table(simulate(args.logs, args.rounds, args.bootstrap)))


if __name__ == "__main__":
    main()
