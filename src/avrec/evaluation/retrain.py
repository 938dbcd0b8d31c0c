"""One round of the learning loop: train a candidate on what the database holds now (the
service's events included), check it against the version being served, and promote it only
through the gate.

The check is offline, forward and paired: for each person who liked something after the served
version's event watermark, their latest such item is held out (the served model never saw
it), a candidate is fitted on the rest, and both it and the served model rank for each of
those people from the same history; their per-person NDCG@k values are bootstrapped
together (same resamples) and :func:`avrec.evaluation.ope.promotion_gate` decides: promote if
the candidate is not significantly worse (the lower end of the interval of the difference at
least ``-margin``). The promoted model is then fitted on everything. Every candidate is saved
and registered, promoted or not, with the gate's reason in its metrics and a report beside it.
Nothing is retrained when fewer than ``min_new_events`` events arrived after the served
version's watermark, unless a retrain was requested (``storage.registry.request_retrain``:
``avrec users forget`` asks for one when parts of the served model still hold a deleted user);
then the new version is promoted whatever the gate says, and the requests are closed.

Warm start (``warm_share`` > 0): where the served version is the same model with the same
config and catalog and can be updated (``Recommender.warm_start``: EASE, by a low-rank update
of its solution; the hybrid, its EASE backbone likewise, its cheap parts refitted and the others
kept, models.hybrid.warm), the candidate and the final model are the served one updated with the
changed users' rows instead of fitted again, unless those rows touch more than ``warm_share``
of the items (then, or with a retrain request open, a full fit). A warm-started model's
manifest names the version it started from (``fitted.warm_started_``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from avrec import metrics as M
from avrec.data.dataset import Dataset
from avrec.evaluation.ope import Estimate, promotion_gate
from avrec.feedback.training import EventPolicy, event_signals, training_from_db
from avrec.models.base import Recommender, TrainData
from avrec.storage import registry
from avrec.storage.repository import events_for_training


@dataclass
class RetrainResult:
    promoted: bool
    reason: str
    version: str | None = None
    report: dict = field(default_factory=dict)


def holdout_new(
    dataset: Dataset, events: pd.DataFrame, watermark: int
) -> tuple[Dataset, dict[str, str]]:
    """``dataset`` without, for each person, the item of their latest positive event after
    ``watermark`` (where that pair is a training interaction), and those items by person."""
    new = events[events["id"] > watermark]
    new = new[event_signals(new) > 0].sort_values("id")
    last = new.groupby("user_id").tail(1)
    inter = dataset.interactions
    pairs = set(zip(inter["user_id"], inter["item_id"], strict=True))
    held = {u: i for u, i in zip(last["user_id"], last["item_id"], strict=True) if (u, i) in pairs}
    drop = [(u, i) in held.items() for u, i in zip(inter["user_id"], inter["item_id"], strict=True)]
    kept = inter[~np.array(drop, dtype=bool)]
    train = Dataset(dataset.items, kept, dataset.users, root=dataset.root, name=dataset.name)
    return train, held


def _fit(
    name: str,
    config: dict | None,
    dataset: Dataset,
    seed: int,
    previous: Path | None = None,
    warm_share: float = 0.0,
) -> tuple[Recommender, str]:
    """A model of ``dataset``: the ``previous`` folder's model warm-started where it can be
    (see the module), else a full fit; and how it was made, in words."""
    from avrec.fusion.features import featurize
    from avrec.models.registry import create_model

    model = create_model(name, {**(config or {}), "seed": seed})
    data = TrainData.from_dataset(*featurize(dataset))
    why = "warm start off"
    if previous is not None and warm_share > 0:
        served = Recommender.load(previous)
        if served.name != model.name or served.config != model.config:
            why = "the served version is another model or config"
        else:
            started = time.perf_counter()
            source = registry.version_of(previous)
            why = served.warm_start(data, warm_share, source=source) or ""
            if not why:
                return served, f"warm start ({time.perf_counter() - started:.2f} s)"
    started = time.perf_counter()
    model.fit(data)
    return model, f"full fit ({time.perf_counter() - started:.2f} s; {why})"


def _per_user_ndcg(model: Recommender, train: Dataset, held: dict[str, str], k: int) -> np.ndarray:
    users = list(held)
    hist = train.interactions.groupby("user_id")["item_id"].apply(list)
    recs = model.recommend(users, k, histories=[hist.get(u, []) for u in users])
    index = {item: n for n, item in enumerate(train.items["item_id"])}
    return np.array(
        [
            M.ndcg([index.get(i, -1) for i in items], {index.get(held[u], -2)}, k)
            for u, items in zip(users, recs.items, strict=True)
        ]
    )


def _estimate(values: np.ndarray, kind: str, n_bootstrap: int, seed: int) -> Estimate:
    rng = np.random.default_rng(seed)
    idx = rng.integers(len(values), size=(n_bootstrap, len(values)))
    draws = values[idx].mean(axis=1)
    low, high = np.quantile(draws, [0.025, 0.975])
    return Estimate(
        kind, float(values.mean()), float(low), float(high), 0.05, draws,
        ("holdout", seed, len(values), n_bootstrap),
    )  # fmt: skip


def new_events(events: pd.DataFrame, after: int) -> int:
    """How many of ``events`` (``events_for_training``) came after event id ``after``."""
    return int((events["id"] > after).sum()) if len(events) else 0


def retrain_once(
    engine: Engine,
    out_root: Path,
    model: str,
    config: dict | None = None,
    policy: EventPolicy | None = None,
    *,
    min_new_events: int = 1,
    margin: float = 0.0,
    k: int = 10,
    seed: int = 0,
    n_bootstrap: int = 1000,
    warm_share: float = 0.0,
) -> RetrainResult:
    current = registry.promoted(engine)
    watermark = int(current.meta.get("event_watermark") or 0) if current is not None else 0
    events = events_for_training(engine)  # one snapshot for the check, the data and the holdout
    requests = registry.retrain_requests(engine)
    # a request: the served version holds what it must not; never start from it
    previous = current.path if current is not None and not requests else None
    if current is not None and not requests:
        fresh = new_events(events, watermark)
        if fresh < min_new_events:
            return RetrainResult(
                False, f"nothing new: {fresh} event(s) after {current.version}'s watermark "
                f"{watermark} (at least {min_new_events} needed)"
            )  # fmt: skip
    data = training_from_db(engine, policy or EventPolicy(), events=events)
    report: dict = {"model": model, "training_data": data.record(), "k": k, "margin": margin}
    held: dict[str, str] = {}
    if current is not None:
        train, held = holdout_new(data.dataset, events, watermark)
    if current is None:
        passed, reason = True, "promote: no version is served yet"
    elif not held:
        passed = False
        reason = (
            f"keep serving {current.version}: no one liked anything since its watermark, "
            "so there is nothing it has not seen to compare on"
        )
    else:
        candidate, report["candidate_fit"] = _fit(model, config, train, seed, previous, warm_share)
        served = Recommender.load(current.path)
        cand = _estimate(_per_user_ndcg(candidate, train, held, k), f"ndcg@{k}", n_bootstrap, seed)
        serv = _estimate(_per_user_ndcg(served, train, held, k), f"ndcg@{k}", n_bootstrap, seed)
        gate = promotion_gate(cand, serv, margin=margin)
        passed, reason = (
            gate.passed,
            f"{gate.reason} (against {current.version}, {len(held)} people)",
        )
        report.update(
            holdout_people=len(held),
            candidate_ndcg=cand.value,
            serving_ndcg=serv.value,
            serving_version=current.version,
        )
    if requests:
        passed = True
        reason = (
            f"promote: {len(requests)} retrain request(s) open "
            f"({'; '.join(dict.fromkeys(r[1] for r in requests))}); the gate: {reason}"
        )
    report["gate"] = reason
    final, report["final_fit"] = _fit(model, config, data.dataset, seed, previous, warm_share)
    base = time.strftime(f"{model}-%Y%m%dT%H%M%S")
    folder, n = Path(out_root) / base, 1
    while folder.exists():  # two rounds within a second
        folder, n = Path(out_root) / f"{base}-{n}", n + 1
    final.save(folder)
    (folder / registry.TRAINING_DATA).write_text(json.dumps(data.record(), indent=2))
    (folder / "retrain_report.json").write_text(json.dumps(report, indent=2, default=str))
    version = registry.register(engine, folder, metrics=report).version
    if passed:
        registry.promote(engine, version, note=reason)
        registry.close_retrain_requests(engine, [r[0] for r in requests])
    return RetrainResult(passed, reason, version, report)


def summary(result: RetrainResult) -> str:
    """One line for logs and the CLI."""
    if result.version is None:
        return f"no candidate: {result.reason}"
    done = "promoted" if result.promoted else "registered, not promoted"
    return f"{result.version} {done}: {result.reason}"
