"""What business rules cost in accuracy: every test user's list made again with the rules
applied the way ``avrec recommend`` and the service apply them (the filters limit the items
ranked, then boosts, freshness, caps and pins act on a pool of :data:`POOL` candidates), and
scored with the same metrics as the plain list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

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


def rules_per_user(
    model: Recommender,
    split: Split,
    rules: CompiledRules,
    ks: Sequence[int],
    seed: int = 0,
    now: dt.datetime | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-user ``{metric}@{k}+rules`` (``user_id`` first, users as
    :func:`avrec.evaluation.runner.rank_users` orders them) and what the rules did: lists
    that break a cap (``rules_cap_violations``, a count), the lists' mean length
    (``rules_length@K``) and the share of lists the rules changed (``rules_changed@K``) at the
    largest cut-off ``K``. Ties break in the runner's seeded order."""
    _, item_vocab, _ = model.fitted_parts()
    if rules.n_items != len(item_vocab):
        raise ValueError(f"rules compiled for {rules.n_items} items, model has {len(item_vocab)}")
    job = eval_users(model, split, seed)
    users_ext, test, tiebreak, candidates = job.users, job.test, job.tiebreak, job.candidates
    allowed = rules.allowed(now)
    ruled_mask = (
        allowed if candidates is None else (candidates if allowed is None else candidates & allowed)
    )
    kmax = max(ks)
    pool = min(len(item_vocab), max(POOL, 2 * kmax, rules.depth))
    rows, violations, lengths, changed = [], 0, [], 0
    for start, stop, hist, scores in job.batches(model, split):
        plain, plain_top = top_k(scores[:, tiebreak], kmax)
        if ruled_mask is not None:
            scores[:, ~ruled_mask] = -np.inf
        idx, top = top_k(scores[:, tiebreak], pool)
        idx, plain = tiebreak[idx], tiebreak[plain]
        for n in range(stop - start):
            out = apply_rules(rules, idx[n], top[n], kmax, exclude=hist[n].indices, now=now)
            relevant = set(item_vocab.lookup(test.iloc[start + n]).tolist()) - {-1}
            row: dict[str, object] = {"user_id": users_ext[start + n]}
            for k in ks:
                for name in METRICS:
                    row[f"{name}@{k}+rules"] = M.RANKING_METRICS[name](out.items, relevant, k)
            rows.append(row)
            violations += bool(cap_violations(rules, out.items))
            lengths.append(len(out.items))
            changed += out.items.tolist() != plain[n][np.isfinite(plain_top[n])].tolist()
    summary = {
        "rules_cap_violations": float(violations),
        f"rules_length@{kmax}": float(np.mean(lengths)) if lengths else 0.0,
        f"rules_changed@{kmax}": changed / max(len(lengths), 1),
    }
    return pd.DataFrame(rows), summary
