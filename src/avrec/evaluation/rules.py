"""What business rules cost in accuracy: every test user's list made again with the rules
applied the way ``avrec recommend`` and the service apply them (the filters limit the items
ranked, then boosts, freshness, caps and pins act on a pool of :data:`POOL` candidates), and
scored with the same metrics as the plain list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from avrec import metrics as M
from avrec.evaluation.protocols import Split
from avrec.evaluation.scoring import eval_users
from avrec.models.arrays import top_k
from avrec.models.base import Recommender
from avrec.rerank.rules import CompiledRules, apply_rules, cap_violations

#: candidates per list the rules act on (as ``rerank.requests.POOL``)
POOL = 100
#: metrics reported with the rules (name@k+rules)
METRICS = ("ndcg", "recall", "hr")


class RulesScorer:
    """Makes each test user's list again with the rules, from the score matrices of the
    runner's own batches (:meth:`batch` is a ``batch_hook`` of
    :func:`avrec.evaluation.runner.rank_users`: each batch is scored once for both lists).
    :meth:`result` gives per-user ``{metric}@{k}+rules`` (``user_id`` first, users in the
    runner's order) and what the rules did: lists that break a cap
    (``rules_cap_violations``, a count), the lists' mean length (``rules_length@K``) and the
    share of lists the rules changed (``rules_changed@K``) at the largest cut-off ``K``. Ties
    break in the runner's seeded order."""

    def __init__(
        self,
        model: Recommender,
        split: Split,
        rules: CompiledRules,
        ks: Sequence[int],
        seed: int = 0,
        now: dt.datetime | None = None,
    ) -> None:
        _, item_vocab, _ = model.fitted_parts()
        if rules.n_items != len(item_vocab):
            raise ValueError(
                f"rules compiled for {rules.n_items} items, model has {len(item_vocab)}"
            )
        self.job = eval_users(model, split, seed)
        self.rules, self.ks, self.now, self.item_vocab = rules, list(ks), now, item_vocab
        allowed = rules.allowed(now)
        candidates = self.job.candidates
        self.mask = (
            allowed
            if candidates is None
            else (candidates if allowed is None else candidates & allowed)
        )
        self.kmax = max(ks)
        self.pool = min(len(item_vocab), max(POOL, 2 * self.kmax, rules.depth))
        self.rows: list[dict[str, object]] = []
        self.violations, self.changed = 0, 0
        self.lengths: list[int] = []

    def batch(self, start: int, stop: int, hist: sp.csr_matrix, scores: np.ndarray) -> None:
        """The rules' lists of ``users[start:stop]`` (``scores``: the batch's masked scores,
        changed in place)."""
        job, rules, kmax = self.job, self.rules, self.kmax
        tiebreak = job.tiebreak
        plain, plain_top = top_k(scores[:, tiebreak], kmax)
        if self.mask is not None:
            scores[:, ~self.mask] = -np.inf
        idx, top = top_k(scores[:, tiebreak], self.pool)
        idx, plain = tiebreak[idx], tiebreak[plain]
        for n in range(stop - start):
            out = apply_rules(rules, idx[n], top[n], kmax, exclude=hist[n].indices, now=self.now)
            relevant = set(self.item_vocab.lookup(job.test.iloc[start + n]).tolist()) - {-1}
            row: dict[str, object] = {"user_id": job.users[start + n]}
            for k in self.ks:
                for name in METRICS:
                    row[f"{name}@{k}+rules"] = M.RANKING_METRICS[name](out.items, relevant, k)
            self.rows.append(row)
            self.violations += bool(cap_violations(rules, out.items))
            self.lengths.append(len(out.items))
            self.changed += out.items.tolist() != plain[n][np.isfinite(plain_top[n])].tolist()

    def result(self) -> tuple[pd.DataFrame, dict[str, float]]:
        lengths = self.lengths
        summary = {
            "rules_cap_violations": float(self.violations),
            f"rules_length@{self.kmax}": float(np.mean(lengths)) if lengths else 0.0,
            f"rules_changed@{self.kmax}": self.changed / max(len(lengths), 1),
        }
        return pd.DataFrame(self.rows), summary


def rules_per_user(
    model: Recommender,
    split: Split,
    rules: CompiledRules,
    ks: Sequence[int],
    seed: int = 0,
    now: dt.datetime | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """:class:`RulesScorer`'s result on its own pass over the test users (where the plain
    lists are not being made at the same time)."""
    scorer = RulesScorer(model, split, rules, ks, seed, now)
    for start, stop, hist, scores in scorer.job.batches(model, split):
        scorer.batch(start, stop, hist, scores)
    return scorer.result()
