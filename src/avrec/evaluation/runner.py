"""Run models through a protocol: train on the training part only, rank (full catalog or the
protocol's candidates, training items excluded), score every test user, keep per-user values
for intervals and paired tests, and the lists for beyond-accuracy metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from avrec import metrics as M
from avrec.data.dataset import Dataset
from avrec.errors import AvrecError
from avrec.evaluation.leakage import guard_no_leakage, isolated
from avrec.evaluation.protocols import Split, make_splits
from avrec.evaluation.rules import RulesScorer
from avrec.evaluation.scoring import BatchHook, eval_users
from avrec.fusion.features import content_vectors
from avrec.models.arrays import top_k
from avrec.models.base import Recommender, TrainData
from avrec.models.capabilities import PredictsRatings
from avrec.models.memory import PeakMemory
from avrec.models.registry import create_model
from avrec.rerank.rules import CompiledRules, Document, compile_rules

if TYPE_CHECKING:
    from distributed import Client

RANKING_BASELINES = ("popularity", "itemknn", "ease", "als")
RATING_BASELINES = ("bias",)


@dataclass
class ModelRun:
    """One model on one split."""

    model: str
    seed: int
    split: str
    per_user: pd.DataFrame  # user_id, train_size, then one column per metric
    metrics: dict[str, float]
    fit_seconds: float
    peak_mb: float  #: models.memory.PeakMemory of the fit (resident memory where Linux allows)
    recommendations: list[np.ndarray] = field(default_factory=list, repr=False)
    #: the scores of ``recommendations`` (aligned), for re-ranking the saved lists
    list_scores: list[np.ndarray] = field(default_factory=list, repr=False)
    #: each test user's history (item indices) at test time, in the order of ``per_user``
    histories: list[np.ndarray] = field(default_factory=list, repr=False)
    #: interaction count of each item in the training part (popularity penalties, long tail)
    item_popularity: np.ndarray | None = field(default=None, repr=False)
    #: user -> relevant item indices (ranking runs), for analyses of the saved lists
    relevant: dict[str, set[int]] = field(default_factory=dict, repr=False)
    #: rating runs (``kfold``) of models with ``predict``: user_id, abs_error, sq_error per
    #: test interaction
    errors: pd.DataFrame | None = field(default=None, repr=False)
    #: the fitted model's ``time_capped_``: training loops a wall-clock cap stopped before the
    #: config's epochs or early stopping did (empty: the model the config and seed describe)
    time_capped: list[str] = field(default_factory=list)


def _auc_rows(scores: np.ndarray, relevant: list[np.ndarray]) -> np.ndarray:
    out = np.full(len(relevant), np.nan)
    for n, rel in enumerate(relevant):
        cand = np.flatnonzero(np.isfinite(scores[n]))
        if len(rel) and len(cand) > len(rel):
            out[n] = M.auc(scores[n], rel, cand)
    return out


def rank_users(
    model: Recommender,
    split: Split,
    ks: Sequence[int],
    depth: int,
    seed: int = 0,
    *,
    scores_out: list[np.ndarray] | None = None,
    histories_out: list[np.ndarray] | None = None,
    batch_hooks: Sequence[BatchHook] = (),
) -> tuple[pd.DataFrame, list[np.ndarray], dict[str, set[int]]]:
    """Per-user ranking metrics; also returns each user's top-``depth`` list and relevant
    items. ``scores_out`` / ``histories_out``, where given, get each list's scores and each
    user's history (item indices) appended, in the same order. Each of ``batch_hooks`` is
    called with ``(start, stop, histories, scores)`` after a batch is ranked (it may change
    the scores), so other lists are made from the same scores without scoring again.

    Users are scored in batches of dense ``[batch, n_items]`` score matrices. Tied scores are
    broken in a seeded random order, not by catalog position (which often follows popularity
    or release date and would reward a model that cannot tell the items apart)."""
    _, item_vocab, _ = model.fitted_parts()
    job = eval_users(model, split, seed)
    users_ext, test, tiebreak = job.users, job.test, job.tiebreak
    rows, lists, relevant_sets = [], [], {}
    kmax = max(max(ks), depth)
    for start, stop, hist, scores in job.batches(model, split):
        idx, top = top_k(scores[:, tiebreak], kmax)
        idx = tiebreak[idx]
        relevant = [item_vocab.lookup(t) for t in test.iloc[start:stop]]
        relevant = [r[r >= 0] for r in relevant]
        aucs = _auc_rows(scores, relevant)
        for n, rel in enumerate(relevant):
            ranked, rel_set = idx[n][np.isfinite(top[n])], set(rel.tolist())
            row = {"user_id": users_ext[start + n], "train_size": int(hist[n].nnz), "auc": aucs[n]}
            for k in ks:
                for name, fn in M.RANKING_METRICS.items():
                    row[f"{name}@{k}"] = fn(ranked, rel_set, k)
            rows.append(row)
            lists.append(ranked[:depth])
            if scores_out is not None:
                scores_out.append(top[n][np.isfinite(top[n])][:depth])
            if histories_out is not None:
                histories_out.append(hist[n].indices.copy())
            relevant_sets[users_ext[start + n]] = rel_set
        for hook in batch_hooks:
            hook(start, stop, hist, scores)
    return pd.DataFrame(rows), lists, relevant_sets


def beyond_accuracy(
    lists: Sequence[np.ndarray],
    k: int,
    data: TrainData,
    item_vectors: np.ndarray,
    split: Split | None = None,
    histories: Sequence[np.ndarray] | None = None,
) -> dict[str, float]:
    """Coverage (of the candidate set where the protocol has one), content diversity,
    novelty and average popularity of the top-``k`` lists; popularity bias against the
    training interactions: the lists' share of long-tail items (outside the most popular items
    that make up 80% of the interactions, :func:`avrec.metrics.long_tail_items`) and their
    items' mean popularity percentile; with ``histories`` (aligned with ``lists``) also the
    mean percentile of the users' histories and, where the catalog has genres, the lists'
    miscalibration (KL of the history's genres against the list's)."""
    pop = np.asarray((data.matrix > 0).sum(axis=0)).ravel().astype(float)
    cut = [lst[:k] for lst in lists]
    n_catalog = len(split.candidates) if split is not None and split.candidates else data.n_items
    tail = M.long_tail_items(pop)
    pct = M.popularity_percentiles(pop)
    out = {
        f"coverage@{k}": M.catalog_coverage(cut, n_catalog),
        f"diversity@{k}": float(np.mean([M.intra_list_diversity(c, item_vectors) for c in cut])),
        f"novelty@{k}": float(np.mean([M.novelty(c, pop, data.n_users) for c in cut])),
        f"popularity@{k}": float(np.mean([M.popularity_bias(c, pop) for c in cut])),
        f"longtail@{k}": float(np.mean([M.long_tail_share(c, tail) for c in cut])),
        f"pop_percentile@{k}": float(np.nanmean([M.mean_percentile(c, pct) for c in cut])),
    }
    if histories is not None:
        out["history_pop_percentile"] = float(
            np.nanmean([M.mean_percentile(h, pct) for h in histories] or [np.nan])
        )
        genres = data.item_features.get("genres")
        if genres is not None and genres.shape[1] > 1:
            p_gi = M.item_genre_distribution(genres)
            out[f"miscalibration@{k}"] = float(
                np.mean(
                    [
                        M.miscalibration(
                            M.genre_distribution(h, p_gi), M.genre_distribution(c, p_gi)
                        )
                        for c, h in zip(cut, histories, strict=True)
                    ]
                )
            )
    return out


def run_rating(model: Recommender, split: Split) -> pd.DataFrame:
    """Absolute and squared error of ``model.predict(user_ids, item_ids)`` on every test
    interaction (see :mod:`avrec.evaluation.protocols` for the contract)."""
    if not isinstance(model, PredictsRatings):
        raise TypeError(f"model {model.name!r} does not predict ratings (no predict method)")
    test = split.test
    pred = np.asarray(model.predict(test["user_id"].tolist(), test["item_id"].tolist()), float)
    if pred.shape != (len(test),):
        raise ValueError(f"{model.name}.predict returned shape {pred.shape} for {len(test)} pairs")
    err = pred - test["rating"].to_numpy(float)
    return pd.DataFrame(
        {"user_id": test["user_id"].to_numpy(), "abs_error": np.abs(err), "sq_error": err**2}
    )


def evaluate(
    dataset: Dataset,
    protocol: str,
    models: Sequence[str],
    ks: Sequence[int] = (10, 20),
    seeds: Sequence[int] = (0,),
    configs: dict[str, dict] | None = None,
    item_vectors: np.ndarray | None = None,
    depth: int = 100,
    log: Callable[[str], None] = print,
    *,
    item_features: dict[str, np.ndarray] | None = None,
    client: Client | None = None,
    rules: Document | None = None,
) -> list[ModelRun]:
    """Every model on every split of ``protocol`` for each seed.

    ``item_features``: catalog feature matrices from
    :func:`avrec.fusion.features.item_features` (handed to models as
    ``TrainData.item_features``; their :func:`content_vectors` measure diversity). For
    compatibility, ``item_vectors`` alone is handed over as the ``text`` feature. Fit and scoring
    run :func:`~avrec.evaluation.leakage.isolated` (training view of the dataset folder, empty
    database). Under ``kfold`` every model is ranked on each fold, and models with ``predict``
    also get MAE/RMSE.

    ``client`` (:func:`avrec.cluster.dask_client`): each (seed, split, model) becomes a Dask task
    (:func:`run_split_model`); the runs come back in the same order as in-process. ``rules``:
    business rules (``avrec.rerank.rules``) each model's lists are also made with, scored as
    ``{metric}@{k}+rules`` (:mod:`avrec.evaluation.rules`)."""
    configs = configs or {}
    compiled = compile_rules(rules, dataset.items) if rules is not None else None
    if item_features is None:
        from avrec.fusion.features import genre_matrix

        item_features = {"genres": genre_matrix(dataset.items)}
        if item_vectors is not None:
            item_features["text"] = np.asarray(item_vectors, np.float32)
    if item_vectors is None:
        item_vectors = content_vectors(item_features)
    splits: list[tuple[int, Split]] = []
    for seed in seeds:
        for split in make_splits(dataset, protocol, seed):
            _check_split(split, protocol, seed, dataset)
            splits.append((seed, split))

    def config(name: str, seed: int) -> dict:
        return {"seed": seed, **configs.get(name, {})}

    runs: list[ModelRun] = []
    if client is None:
        for seed, split in splits:
            train = dataset.with_interactions(split.train)
            with isolated(dataset, train) as view:  # one training view per split
                data = TrainData.from_dataset(train, item_features)
                data.root = view
                guard_no_leakage(split, data)
                for name in models:
                    runs.append(
                        _run_one(
                            name,
                            seed,
                            split,
                            data,
                            ks,
                            depth,
                            item_vectors,
                            config(name, seed),
                            compiled,
                        )
                    )
                    _log_run(log, protocol, runs[-1], ks)
        return runs
    shared = client.scatter([dataset, item_features, item_vectors], broadcast=True, hash=False)
    # the cluster starts the later models of the list first (the baselines, cheapest, come
    # first in it), so that a long fit does not run alone at the end; results are still
    # gathered in submission order
    futures = [
        client.submit(
            run_split_model,
            shared[0],
            split,
            name,
            seed,
            tuple(ks),
            depth,
            shared[2],
            shared[1],
            config(name, seed),
            compiled,
            pure=False,
            priority=position,
        )
        for seed, split in splits
        for position, name in enumerate(models)
    ]
    for future in futures:  # submission order: the same list as in-process
        runs.append(future.result())
        _log_run(log, protocol, runs[-1], ks)
    return runs


def _check_split(split: Split, protocol: str, seed: int, dataset: Dataset) -> None:
    if split.train.empty or split.test.empty:
        raise AvrecError(
            f"the {protocol} protocol leaves no "
            f"{'training' if split.train.empty else 'test'} "
            f"interactions in split {split.name} (seed {seed}) of this dataset's "
            f"{dataset.n_interactions:,} interactions; evaluate on more data or choose "
            "another protocol"
        )


def _log_run(log: Callable[[str], None], protocol: str, run: ModelRun, ks: Sequence[int]) -> None:
    main = f"ndcg@{min(ks)}"
    extra = f" rmse={run.metrics['rmse']:.4f}" if "rmse" in run.metrics else ""
    if f"{main}+rules" in run.metrics:
        extra += f" {main}+rules={run.metrics[f'{main}+rules']:.4f}"
    capped = f" [time-capped: {'; '.join(run.time_capped)}]" if run.time_capped else ""
    log(
        f"{protocol} seed={run.seed} {run.split} {run.model}: "
        f"{main}={run.metrics[main]:.4f}{extra} (fit {run.fit_seconds:.1f} s){capped}"
    )


def run_split_model(
    dataset: Dataset,
    split: Split,
    name: str,
    seed: int,
    ks: Sequence[int],
    depth: int,
    item_vectors: np.ndarray,
    item_features: dict[str, np.ndarray],
    config: dict,
    rules: CompiledRules | None = None,
) -> ModelRun:
    """One model on one split from scratch (training view, leakage guard, fit, ranking): the
    unit of work that :func:`evaluate` hands to Dask workers."""
    train = dataset.with_interactions(split.train)
    with isolated(dataset, train) as view:
        data = TrainData.from_dataset(train, item_features)
        data.root = view
        guard_no_leakage(split, data)
        return _run_one(name, seed, split, data, ks, depth, item_vectors, config, rules)


def _run_one(
    name: str,
    seed: int,
    split: Split,
    data: TrainData,
    ks: Sequence[int],
    depth: int,
    item_vectors: np.ndarray,
    config: dict,
    rules: CompiledRules | None = None,
) -> ModelRun:
    model = create_model(name, config)
    with PeakMemory() as peak:
        t0 = time.perf_counter()
        model.fit(data)
        fit_s = time.perf_counter() - t0
    list_scores: list[np.ndarray] = []
    histories: list[np.ndarray] = []
    ruled = RulesScorer(model, split, rules, ks, seed) if rules is not None else None
    per_user, lists, relevant = rank_users(
        model,
        split,
        ks,
        depth,
        seed,
        scores_out=list_scores,
        histories_out=histories,
        batch_hooks=[ruled.batch] if ruled is not None else [],
    )
    notes: dict[str, float] = {}
    if ruled is not None:
        ruled_users, notes = ruled.result()
        per_user = per_user.merge(ruled_users, on="user_id", how="left")
    metrics = per_user.drop(columns=["user_id", "train_size"]).mean().to_dict()
    metrics.update(notes)
    metrics.update(beyond_accuracy(lists, min(ks), data, item_vectors, split, histories))
    errors = None
    if split.task == "rating" and isinstance(model, PredictsRatings):
        errors = run_rating(model, split)
        metrics["mae"] = float(errors["abs_error"].mean())
        metrics["rmse"] = float(np.sqrt(errors["sq_error"].mean()))
    return ModelRun(
        name,
        seed,
        split.name,
        per_user,
        metrics,
        fit_s,
        peak.mib,
        lists,
        list_scores,
        histories,
        np.asarray((data.matrix > 0).sum(axis=0)).ravel().astype(np.float64),
        relevant,
        errors,
        list(model.time_capped_),
    )
