"""Protocols split as specified, never leak, and the harness blocks a model that peeks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from avrec.data import Dataset
from avrec.evaluation.protocols import make_splits
from avrec.evaluation.runner import evaluate, guard_no_leakage
from avrec.models.base import ModelConfig, Recommender, TrainData
from avrec.models.registry import register


def _data(n_users=50, n_items=60, per_user=12, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for t, i in enumerate(rng.choice(n_items, per_user + u % 5, replace=False)):
            rows.append((f"u{u}", f"i{i}", float(rng.integers(1, 6)), 1_000 + 10 * t + u))
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "genres": ["A|B" if i % 2 else "C" for i in range(n_items)],
        }
    )
    return Dataset(items, pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]))


def test_random_and_msr_fractions_per_user():
    ds = _data()
    sizes = ds.interactions.groupby("user_id").size()
    expected = {
        "random": np.maximum(1, np.round(sizes * 0.2)),
        # Microsoft Recommenders python_stratified_split(ratio=0.75): the r-th of n
        # (random order, 1-based) trains when r / n <= 0.75
        "msr": sizes - np.floor(0.75 * sizes),
    }
    for protocol, want in expected.items():
        split = make_splits(ds, protocol, seed=3)[0]
        split.check_no_leakage()
        test_sizes = split.test.groupby("user_id").size()
        np.testing.assert_array_equal(test_sizes.reindex(sizes.index).to_numpy(), want.to_numpy())
        assert len(split.train) + len(split.test) == len(ds.interactions)
    assert set(sizes % 4) == {0, 1, 2, 3}  # every rounding case of the msr rule is exercised
    a, b = make_splits(ds, "msr", 1)[0], make_splits(ds, "msr", 2)[0]
    assert not a.test.equals(b.test)  # seeds give different splits


def test_last_temporal_cold_splits():
    ds = _data()
    last = make_splits(ds, "last")[0]
    latest = ds.interactions.sort_values("timestamp").groupby("user_id").tail(1)
    assert set(zip(last.test.user_id, last.test.item_id, strict=True)) == set(
        zip(latest.user_id, latest.item_id, strict=True)
    )
    temporal = make_splits(ds, "temporal")[0]
    assert temporal.train.timestamp.max() < temporal.test.timestamp.min()
    cold = make_splits(ds, "cold-items", seed=0)[0]
    cold.check_no_leakage()
    assert len(cold.candidates) == round(0.2 * ds.interactions.item_id.nunique())
    assert set(cold.test.item_id) <= set(cold.candidates)
    users = make_splits(ds, "cold-users", seed=0)[0]
    assert not set(users.test.user_id) & set(users.train.user_id)
    assert all(len(h) == 3 for h in users.histories.values())
    folds = make_splits(ds, "kfold", seed=0)
    assert len(folds) == 5 and sum(len(f.test) for f in folds) == len(ds.interactions)


class PeekConfig(ModelConfig):
    pass


class Peeker(Recommender):
    """Scores the items in the user's own history highest: if test interactions reached
    training, it would recommend exactly the test items and score impossibly well."""

    name = "peeker"
    Config = PeekConfig

    def _fit(self, data: TrainData) -> None:
        self.pop = np.asarray(data.matrix.sum(axis=0)).ravel()

    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        return histories.toarray() * 1e6 + self.pop


register("peeker", "tests.unit.test_eval_protocols:Peeker")


def test_peeking_model_scores_no_better_than_popularity():
    ds = _data()
    runs = evaluate(ds, "msr", ["popularity", "peeker"], ks=[10], log=lambda _: None)
    by = {r.model: r.metrics["ndcg@10"] for r in runs}
    assert by["peeker"] == pytest.approx(by["popularity"])
    # the same model, handed a split whose test part leaked into training, is perfect -
    # which is what the guard prevents
    split = make_splits(ds, "msr", 0)[0]
    leaked = pd.concat([split.train, split.test])
    data = TrainData.from_dataset(ds.with_interactions(leaked))
    model = Peeker().fit(data)
    users = model.user_vocab.lookup(sorted(split.test.user_id.unique()))
    hist = model.history_matrix(users)
    scores = model.score(users, hist)
    test = split.test.groupby("user_id")["item_id"].agg(set)
    for n, user in enumerate(test.index):
        top = set(model.item_vocab.ids[np.argsort(-scores[n])[: hist[n].nnz]])
        assert test[user] <= top  # every test item ranked within the (leaked) history
    split.train = leaked
    with pytest.raises(AssertionError, match="test interactions are in training"):
        guard_no_leakage(split, data)


def test_evaluate_cli_writes_report(tmp_path, synthetic_dataset):
    from avrec.cli import app

    root = tmp_path / "ds"
    root.mkdir()
    synthetic_dataset.items[["item_id", "title", "genres", "kind"]].to_csv(
        root / "items.csv", index=False
    )
    synthetic_dataset.interactions[["user_id", "item_id", "rating", "timestamp"]].to_csv(
        root / "interactions.csv", index=False
    )
    report = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(root),
            "--protocol",
            "random",
            "--models",
            "bpr",
            "--k",
            "5,10",
            "--seeds",
            "0,1",
            "--report",
            str(report),
            "--no-text-features",
        ],
    )
    assert result.exit_code == 0, result.output
    import json

    res = json.loads((report / "results.json").read_text())
    assert set(res["models"]) == {"popularity", "itemknn", "ease", "als", "bpr"}
    assert res["seeds"] == [0, 1] and res["significance"]
    # two clear taste groups: the collaborative models must beat popularity by far
    assert res["models"]["ease"]["ndcg@5"] > 2 * res["models"]["popularity"]["ndcg@5"]
    assert res["models"]["itemknn"]["ndcg@5"] > 2 * res["models"]["popularity"]["ndcg@5"]
    for png in ("metrics", "activity", "popularity", "tradeoff"):
        assert (report / "plots" / f"{png}.png").stat().st_size > 5_000
    assert "<img" in (report / "index.html").read_text()
    # popularity bias of every model, and the re-ranking curves of every model
    for figures in res["models"].values():
        assert 0 <= figures["longtail@5"] <= 1 and 0 < figures["pop_percentile@5"] < 1
        assert figures["miscalibration@5"] >= 0 and 0 < figures["history_pop_percentile"] < 1
    curves = pd.DataFrame(res["tradeoff"])
    assert set(curves["method"]) == {"none", "mmr", "dpp", "calibrated", "debias"}
    assert set(curves["model"]) == set(res["models"])
    bad = CliRunner().invoke(app, ["evaluate", str(root), "--protocol", "nope"])
    assert bad.exit_code == 2 and "unknown protocol" in bad.output


def test_kfold_rating_protocol():
    ds = _data()
    runs = evaluate(ds, "kfold", ["bias"], ks=[10], log=lambda _: None)
    assert len(runs) == 5 and all(0 < r.metrics["rmse"] < 3 for r in runs)
