"""A membership-inference audit: can someone who may query a trained model tell the people it
was trained on from people it was not?

The attack is a score threshold (Yeom et al. 2018's loss attack, for rankings): for each person
of a dataset, one of their items (drawn with the seed) is hidden and the model scores the
catalog from the rest of their history, as anyone may ask it; the attack's score is the hidden
item's rank percentile among the items not in that history. A model that memorised its training
people ranks their hidden items higher than those of people it never saw. The audit reports the
attack's AUC over the two groups (members: people in the model's user vocabulary; everyone else
in the dataset: non-members): 0.5 means it cannot tell them apart.
"""

from __future__ import annotations

import numpy as np

from avrec import metrics as M
from avrec.data.dataset import Dataset
from avrec.errors import AvrecError
from avrec.models.base import Recommender


class AuditError(AvrecError, ValueError):
    """A dataset the audit cannot use with this model."""


def probe_percentiles(
    model: Recommender, histories: list[list[str]], probes: list[str], batch: int = 256
) -> np.ndarray:
    """For each history, the rank percentile (1 = top) of its probe item among the catalog
    items not in the history, scored by ``model`` from the history alone (no user id)."""
    _, item_vocab, _ = model.fitted_parts()
    out = np.zeros(len(probes))
    for start in range(0, len(probes), batch):
        stop = min(start + batch, len(probes))
        users = np.full(stop - start, -1, dtype=np.int64)
        hist = model.history_matrix(users, histories[start:stop])
        scores = np.asarray(model.score(users, hist), dtype=np.float64)
        for n in range(stop - start):
            row = scores[n]
            seen = hist[n].indices
            probe = item_vocab.get(probes[start + n])
            if probe is None:
                continue  # an item the model never saw: no signal either way
            free = np.ones(len(row), dtype=bool)
            free[seen] = False
            free[probe] = True
            value = row[probe]
            others = row[free]
            out[start + n] = (np.sum(others < value) + 0.5 * (np.sum(others == value) - 1)) / max(
                len(others) - 1, 1
            )
    return out


def auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """The probability that a random positive scores above a random negative (ties count
    half): :func:`avrec.metrics.auc` over the two groups."""
    scores = np.concatenate([positives, negatives])
    return M.auc(scores, range(len(positives)), np.arange(len(scores)))


def membership_audit(
    model: Recommender, dataset: Dataset, seed: int = 0, max_people: int | None = 2_000
) -> dict:
    """The attack's AUC for ``model`` on ``dataset`` (see the module), with the group sizes.
    People with fewer than two interactions are skipped; ``max_people`` caps each group (a
    seeded sample)."""
    user_vocab, _, _ = model.fitted_parts()
    rng = np.random.default_rng(seed)
    by_user = dataset.interactions.groupby("user_id", sort=True)["item_id"].apply(list)
    groups: dict[bool, list[tuple[str, list[str]]]] = {True: [], False: []}
    for user, items in by_user.items():
        if len(items) >= 2:
            groups[str(user) in user_vocab].append((str(user), [str(i) for i in items]))
    if not groups[True] or not groups[False]:
        raise AuditError(
            "the dataset must hold people the model was trained on and people it was not "
            f"({len(groups[True])} trained on, {len(groups[False])} not, with 2+ interactions)"
        )
    percentiles = {}
    for member, people in groups.items():
        if max_people is not None and len(people) > max_people:
            keep = rng.choice(len(people), max_people, replace=False)
            people = [people[i] for i in sorted(keep)]
        probes, histories = [], []
        for _, items in people:
            hidden = int(rng.integers(len(items)))
            probes.append(items[hidden])
            histories.append(items[:hidden] + items[hidden + 1 :])
        percentiles[member] = probe_percentiles(model, histories, probes)
    return {
        "attack": "hidden-item rank percentile (score threshold), one item per person",
        "auc": auc(percentiles[True], percentiles[False]),
        "members": len(percentiles[True]),
        "non_members": len(percentiles[False]),
        "member_mean_percentile": float(percentiles[True].mean()),
        "non_member_mean_percentile": float(percentiles[False].mean()),
    }
