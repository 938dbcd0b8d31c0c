"""The Open Bandit Dataset (ZOZOTOWN fashion recommendations; Saito et al., 2020) as a
:class:`~avrec.evaluation.ope.BanditLog`.

Layout: ``ROOT/<policy>/<campaign>.csv`` (the small sample) or
``ROOT/<policy>/<campaign>/<campaign>.csv`` (the full dataset), ``policy`` being ``random``
(uniform: every item at every position with probability 1/80) or ``bts`` (Bernoulli Thompson
sampling), ``campaign`` ``all``, ``men`` or ``women``. One row per impression: ``item_id``,
``position`` (1-based in the files), ``click``, ``propensity_score`` (the logging policy's
probability of that item at that position) and hashed user features.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from avrec.evaluation.ope import BanditLog, BanditLogError

POLICIES = ("random", "bts")
COLUMNS = ("item_id", "position", "click", "propensity_score")


@dataclass(frozen=True, eq=False)
class OpenBanditLog:
    """One behavior policy's log: the rounds as a :class:`BanditLog` (positions 0-based) and
    the raw frame (timestamps, user features, user-item affinities)."""

    policy: str
    campaign: str
    log: BanditLog
    frame: pd.DataFrame


def load_open_bandit(root: str | Path, policy: str, campaign: str = "all") -> OpenBanditLog:
    """Read one behavior policy's log of one campaign; items and positions keep the dataset's
    numbering (items 0..n_items-1 from ``item_context.csv`` when present)."""
    if policy not in POLICIES:
        raise BanditLogError(f"unknown behavior policy {policy!r}; expected one of {POLICIES}")
    base = Path(root) / policy
    candidates = [base / f"{campaign}.csv", base / campaign / f"{campaign}.csv"]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise BanditLogError(
            f"no Open Bandit log for policy {policy!r}, campaign {campaign!r}: looked for "
            + " and ".join(str(c) for c in candidates)
        )
    frame = pd.read_csv(path, index_col=0)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise BanditLogError(f"{path}: missing column(s) {', '.join(missing)}")
    items = path.parent / "item_context.csv"
    n_items = (
        len(pd.read_csv(items, index_col=0)) if items.is_file() else int(frame["item_id"].max()) + 1
    )
    log = BanditLog(
        action=frame["item_id"].to_numpy(),
        position=frame["position"].to_numpy() - 1,
        reward=frame["click"].to_numpy(float),
        pscore=frame["propensity_score"].to_numpy(float),
        n_actions=n_items,
    )
    return OpenBanditLog(policy, campaign, log, frame)
