"""Evaluation protocols: how interactions are split into training and test parts.

Each protocol returns :class:`Split` objects (one; ``kfold``: five):

- ``random``: per user with >= 5 interactions, a random 20% to test;
- ``msr``: per user, a random 25% to test, exactly as Microsoft Recommenders'
  ``python_stratified_split(ratio=0.75)``;
- ``last``: per user with >= 5 interactions, the last interaction by time to test;
- ``temporal``: one global cut, interactions in the last 10% of the time span are test (test
  users need training interactions; test items never seen in training are dropped);
- ``cold-items``: 20% of the items with interactions are held out with all their interactions;
  test users rank only those items (``Split.candidates``);
- ``cold-users``: 20% of users held out; each is given their first 3 interactions as history
  (``Split.histories``, passed as the ``histories`` of ``rank``/``recommend``), the rest is test;
- ``kfold``: the rated interactions in 5 random folds, each fold the test part once.

Ranking protocols rank the full catalog (or the candidates) with the user's training (or given)
items excluded; every test interaction counts as relevant.

Rating prediction (``kfold``) -- the contract for rating models: a fitted model that also
predicts ratings exposes ::

    predict(user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray  # float, [n]

one predicted rating per (user, item) pair, external IDs, any pair (unknown users or items get a
fallback such as the global mean, never an error). The harness calls it once per fold on all the
fold's test pairs and reports MAE and RMSE; models without ``predict`` are ranked only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from avrec.data.dataset import Dataset

PROTOCOLS = ("random", "msr", "last", "temporal", "cold-items", "cold-users", "kfold")


@dataclass
class Split:
    """A train/test split. ``histories``: user -> items given as history at test time (cold
    users); ``candidates``: items allowed in the ranking (cold items), None = whole catalog."""

    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    task: str = "ranking"
    candidates: list[str] | None = None
    histories: dict[str, list[str]] = field(default_factory=dict)

    def check_no_leakage(self) -> None:
        """Fail if a test interaction (user, item) is also in training."""
        key = ["user_id", "item_id"]
        both = self.train[key].merge(self.test[key].drop_duplicates(), on=key, how="inner")
        if len(both):
            raise AssertionError(f"{self.name}: {len(both)} test interactions are in training")
        if self.candidates is not None:
            leaked = set(self.candidates) & set(self.train["item_id"])
            if leaked:
                raise AssertionError(f"{self.name}: held-out items appear in training")


def _dedup(inter: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, item): the last by time."""
    ts = inter["timestamp"].fillna(-1)
    return (
        inter.assign(_ts=ts)
        .sort_values(["user_id", "_ts"], kind="stable")
        .drop_duplicates(["user_id", "item_id"], keep="last")
        .drop(columns="_ts")
        .reset_index(drop=True)
    )


def per_user_fraction(
    inter: pd.DataFrame,
    fraction: float,
    seed: int,
    min_interactions: int,
    name: str,
    *,
    msr: bool = False,
) -> Split:
    """Per user (with at least ``min_interactions``), a random ``fraction`` to test.

    ``random``: ``max(1, round(fraction * n))`` test interactions. ``msr`` (``msr=True``):
    exactly Microsoft Recommenders' ``python_stratified_split(ratio=1 - fraction)``: in a random
    order, the interaction at position ``r`` (1-based) of ``n`` is training when ``r / n <=
    1 - fraction`` -- i.e. ``n - floor((1 - fraction) * n)`` test interactions."""
    rng = np.random.default_rng(seed)
    inter = _dedup(inter)
    keys = rng.random(len(inter))
    order = pd.DataFrame({"user": inter["user_id"], "key": keys}).sort_values(["user", "key"])
    rank = order.groupby("user").cumcount().reindex(inter.index).to_numpy()
    size = inter.groupby("user_id")["item_id"].transform("size").to_numpy()
    if msr:
        test_mask = (rank + 1) / size > 1 - fraction
    else:
        n_test = np.where(size >= min_interactions, np.maximum(1, np.round(size * fraction)), 0)
        test_mask = rank < n_test
    return Split(
        name, inter[~test_mask].reset_index(drop=True), inter[test_mask].reset_index(drop=True)
    )


def leave_last_out(inter: pd.DataFrame, min_interactions: int = 5) -> Split:
    inter = _dedup(inter)
    ts = inter["timestamp"].fillna(-1)
    order = inter.assign(_ts=ts, _row=np.arange(len(inter))).sort_values(
        ["user_id", "_ts", "_row"], kind="stable"
    )
    last = order.groupby("user_id").tail(1).index
    size = inter.groupby("user_id")["item_id"].transform("size")
    test_mask = inter.index.isin(last) & (size >= min_interactions).to_numpy()
    return Split(
        "last", inter[~test_mask].reset_index(drop=True), inter[test_mask].reset_index(drop=True)
    )


def temporal(inter: pd.DataFrame, test_share: float = 0.1) -> Split:
    """One global cut: interactions in the last 10% of the time span are test; test users
    must have training interactions, and test items unseen in training are dropped."""
    inter = _dedup(inter)
    ts = inter["timestamp"]
    cut = ts.min() + (ts.max() - ts.min()) * (1 - test_share)
    train, test = inter[ts < cut], inter[ts >= cut]
    test = test[
        test["user_id"].isin(set(train["user_id"])) & test["item_id"].isin(set(train["item_id"]))
    ]
    return Split("temporal", train.reset_index(drop=True), test.reset_index(drop=True))


def cold_items(inter: pd.DataFrame, all_items: list[str], seed: int, share: float = 0.2) -> Split:
    """20% of the items that have interactions are held out with all their interactions; test
    users rank only those items."""
    rng = np.random.default_rng(seed)
    inter = _dedup(inter)
    with_inter = np.array(sorted(set(inter["item_id"])), dtype=object)
    held = set(rng.choice(with_inter, size=round(len(with_inter) * share), replace=False))
    test_mask = inter["item_id"].isin(held).to_numpy()
    train, test = inter[~test_mask], inter[test_mask]
    test = test[test["user_id"].isin(set(train["user_id"]))]
    return Split(
        "cold-items",
        train.reset_index(drop=True),
        test.reset_index(drop=True),
        candidates=sorted(held),
    )


def cold_users(inter: pd.DataFrame, seed: int, share: float = 0.2, given: int = 3) -> Split:
    """20% of users are held out; each gets their first ``given`` interactions as history and
    the rest is test (users with more than ``given`` interactions)."""
    rng = np.random.default_rng(seed)
    inter = _dedup(inter)
    users = np.array(sorted(set(inter["user_id"])), dtype=object)
    held = set(rng.choice(users, size=round(len(users) * share), replace=False))
    mask = inter["user_id"].isin(held).to_numpy()
    train, held_rows = inter[~mask], inter[mask]
    held_rows = held_rows.assign(
        _ts=held_rows["timestamp"].fillna(-1), _row=np.arange(len(held_rows))
    )
    held_rows = held_rows.sort_values(["user_id", "_ts", "_row"], kind="stable")
    pos = held_rows.groupby("user_id").cumcount()
    first = held_rows[pos < given]
    test = held_rows[pos >= given].drop(columns=["_ts", "_row"])
    histories = first.groupby("user_id")["item_id"].agg(list).to_dict()
    histories = {u: h for u, h in histories.items() if u in set(test["user_id"])}
    return Split(
        "cold-users", train.reset_index(drop=True), test.reset_index(drop=True), histories=histories
    )


def kfold(inter: pd.DataFrame, folds: int, seed: int) -> list[Split]:
    rated = _dedup(inter[inter["rating"].notna()])
    fold = np.random.default_rng(seed).permutation(len(rated)) % folds
    return [
        Split(
            f"kfold-{f}",
            rated[fold != f].reset_index(drop=True),
            rated[fold == f].reset_index(drop=True),
            task="rating",
        )
        for f in range(folds)
    ]


def make_splits(dataset: Dataset, protocol: str, seed: int = 0, folds: int = 5) -> list[Split]:
    """The splits of ``protocol`` (see :data:`PROTOCOLS`) for one seed."""
    inter = dataset.interactions
    if protocol == "random":
        return [per_user_fraction(inter, 0.2, seed, 5, "random")]
    if protocol == "msr":
        return [per_user_fraction(inter, 0.25, seed, 1, "msr", msr=True)]
    if protocol == "last":
        return [leave_last_out(inter)]
    if protocol == "temporal":
        return [temporal(inter)]
    if protocol == "cold-items":
        return [cold_items(inter, list(dataset.items["item_id"]), seed)]
    if protocol == "cold-users":
        return [cold_users(inter, seed)]
    if protocol == "kfold":
        return kfold(inter, folds, seed)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
