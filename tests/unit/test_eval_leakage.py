"""Leakage guards: a model that peeks at the whole dataset (folder on disk, database) would
score impossibly well; under the evaluation harness it finds only the training part and
scores like popularity. The embedding cache ends up holding catalog content only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from avrec.data import Dataset
from avrec.data.loaders import load_dataset
from avrec.evaluation.leakage import LeakageError, guard_no_leakage
from avrec.evaluation.protocols import make_splits
from avrec.evaluation.runner import evaluate, rank_users
from avrec.models.base import ModelConfig, Recommender, TrainData
from avrec.models.registry import register


class PeekConfig(ModelConfig):
    source: str = "folder"  # folder | database


class PeekingModel(Recommender):
    """Reads *all* interactions it can reach besides the ones it was given -- the dataset
    folder's ``interactions.csv`` or the database -- and ranks every pair it was not given
    (i.e. test pairs, if it can see them) first."""

    name = "peeking"
    Config = PeekConfig

    def _fit(self, data: TrainData) -> None:
        if self.config.source == "folder":
            everything = pd.read_csv(
                data.root / "interactions.csv", dtype={"user_id": str, "item_id": str}
            )
        else:
            from avrec.storage.repository import load_from_db

            everything = load_from_db().interactions
        given = set(zip(data.interactions["user_id"], data.interactions["item_id"], strict=True))
        extra = [
            (u, i)
            for u, i in zip(everything["user_id"], everything["item_id"], strict=True)
            if (u, i) not in given
        ]
        self.n_peeked = len(extra)
        r = data.user_vocab.lookup([u for u, _ in extra])
        c = data.item_vocab.lookup([i for _, i in extra])
        ok = (r >= 0) & (c >= 0)
        self.peeked = sp.csr_matrix(
            (np.ones(ok.sum(), np.float32), (r[ok], c[ok])), shape=data.matrix.shape
        )
        self.pop = np.asarray(data.matrix.sum(axis=0)).ravel().astype(np.float32)

    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        peek = self.peeked[np.maximum(users, 0)].toarray() * (users >= 0)[:, None]
        return peek * 1e6 + self.pop


register("peeking", "tests.unit.test_eval_leakage:PeekingModel")


def _write(ds: Dataset, root) -> Dataset:
    root.mkdir()
    ds.items[["item_id", "title", "genres"]].to_csv(root / "items.csv", index=False)
    ds.interactions[["user_id", "item_id", "rating", "timestamp", "comment"]].to_csv(
        root / "interactions.csv", index=False
    )
    return load_dataset(root)


@pytest.fixture
def folder_dataset(tmp_path, synthetic_dataset) -> Dataset:
    inter = synthetic_dataset.interactions.copy()
    inter["comment"] = [f"secret comment {n}" for n in range(len(inter))]
    return _write(synthetic_dataset.with_interactions(inter), tmp_path / "ds")


def _ndcg(runs, model):
    return float(np.mean([r.metrics["ndcg@10"] for r in runs if r.model == model]))


def test_peeking_through_the_folder_would_be_perfect_but_is_blocked(folder_dataset):
    split = make_splits(folder_dataset, "random", seed=0)[0]
    # unguarded: the training data points at the real folder, which holds the test part
    data = TrainData.from_dataset(folder_dataset.with_interactions(split.train))
    assert data.root == folder_dataset.root
    model = PeekingModel().fit(data)
    assert model.n_peeked == len(split.test)
    per_user, _, _ = rank_users(model, split, [10], 10)
    assert per_user["ndcg@10"].mean() == pytest.approx(1.0)  # impossibly good
    # guarded: the harness hands over a training view of the folder
    runs = evaluate(
        folder_dataset,
        "random",
        ["popularity", "peeking"],
        ks=[10],
        seeds=[0, 1],
        log=lambda _: None,
    )
    assert _ndcg(runs, "peeking") == pytest.approx(_ndcg(runs, "popularity"))
    assert _ndcg(runs, "peeking") < 0.5


@pytest.mark.parametrize("protocol", ["msr", "last", "cold-users"])
def test_peeking_through_the_database_is_blocked(folder_dataset, avrec_home, protocol):
    from avrec.storage.ingest import ingest

    ingest(folder_dataset)  # the whole dataset, test part included, is in the database
    split = make_splits(folder_dataset, protocol, seed=0)[0]
    model = PeekingModel(source="database").fit(
        TrainData.from_dataset(folder_dataset.with_interactions(split.train))
    )
    assert model.n_peeked >= len(split.test)
    if protocol != "cold-users":  # cold users are unknown to the model either way
        per_user, _, _ = rank_users(model, split, [10], 10)
        assert per_user["ndcg@10"].mean() > 0.95
    runs = evaluate(
        folder_dataset,
        protocol,
        ["popularity", "peeking"],
        ks=[10],
        configs={"peeking": {"source": "database"}},
        log=lambda _: None,
    )
    assert _ndcg(runs, "peeking") == pytest.approx(_ndcg(runs, "popularity"))


def test_guard_catches_a_split_whose_test_part_reached_training(folder_dataset):
    inter = folder_dataset.interactions.copy()
    inter["timestamp"] = np.random.default_rng(0).permutation(inter["timestamp"].to_numpy())
    ds = folder_dataset.with_interactions(inter)
    for protocol in ("random", "msr", "last", "temporal", "cold-items", "cold-users", "kfold"):
        split = make_splits(ds, protocol, seed=0)[0]
        assert len(split.test) > 0, protocol
        guard_no_leakage(split, TrainData.from_dataset(ds.with_interactions(split.train)))
        split.train = pd.concat([split.train, split.test.iloc[:1]])
        with pytest.raises(LeakageError):
            guard_no_leakage(split, TrainData.from_dataset(ds.with_interactions(split.train)))


def test_embedding_cache_holds_catalog_content_only(folder_dataset, avrec_home, monkeypatch):
    """The cache maps hashes of item texts to vectors; no interaction text (the test
    comments included) ever goes into it during an evaluation."""
    from avrec.encoders import pipeline
    from avrec.encoders.cache import EmbeddingCache, content_key
    from avrec.evaluation.api import evaluate_to_report
    from avrec.fusion.features import item_texts

    encoded: list[str] = []
    original = pipeline.encode_cached

    def spy(payloads, encoder_name, encode=None, **kw):
        encoded.extend(payloads)
        dim = 8

        def fake(batch):
            return np.eye(dim, dtype=np.float32)[[len(t) % dim for t in batch]]

        return original(payloads, "text-fake", encode=fake, **kw)

    class FakeEncoder:
        key, dim = "text-fake@0", 8

    monkeypatch.setattr(pipeline, "encode_cached", spy)
    monkeypatch.setattr("avrec.encoders.pipeline.get_encoder", lambda name: FakeEncoder())
    evaluate_to_report(
        folder_dataset, "random", [], [10], [0], avrec_home / "report", log=lambda _: None
    )
    keys = set(EmbeddingCache(FakeEncoder.key)._vectors)
    catalog = {content_key(t) for t in item_texts(folder_dataset)}
    comments = {content_key(c) for c in folder_dataset.interactions["comment"]}
    assert keys == catalog and not keys & comments
    assert encoded and not any("secret comment" in t for t in encoded)
