"""Retrieval -> ranking cascade: each retriever, the merge, exact ranking of the candidates
(the full ranking when the budget covers the catalog), and the CLI path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from avrec.index.cascade import Cascade, CascadeConfig, merge
from avrec.models.baselines.sparse_ease import SparseEASE
from avrec.models.hybrid import Hybrid
from tests.unit.test_models_hybrid_parts import N_ITEMS, SMALL, _data


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(scope="module")
def sparse(data):
    return SparseEASE({"neighbors": 10, "l2": 5.0}).fit(data)


@pytest.fixture(scope="module")
def hybrid(data):
    return Hybrid({**SMALL, "backbone": {"kind": "sparse", "neighbors": 12}}).fit(data)


def _rows(model, n=6):
    users = np.arange(n)
    return users, model.history_matrix(users)


def test_merge_takes_budgets_in_turn_drops_duplicates_then_fills():
    a, b, c = np.array([1, 2, 3, 4, 5]), np.array([2, 6, 7]), np.array([1, 8])
    assert merge([a, b, c], [2, 2, 1], 5).tolist() == [1, 2, 6, 7, 8]
    # free slots (c has nothing new beyond 1) go to further items, one list after another
    assert merge([a, b, c], [2, 2, 2], 8).tolist() == [1, 2, 6, 7, 8, 3, 4, 5]
    assert merge([a, b, c], [2, 2, 2], 3).tolist() == [1, 2, 6]
    assert merge([np.zeros(0, np.int64)], [3], 3).tolist() == []


def test_score_items_equals_the_full_scores(sparse, hybrid):
    for model in (sparse, hybrid):
        users, hist = _rows(model)
        full = model.score(users, hist)
        items = np.random.default_rng(0).integers(-1, N_ITEMS, (len(users), 7))
        got = model.score_items(users, hist, items)
        want = np.where(items >= 0, np.take_along_axis(full, np.maximum(items, 0), 1), 0.0)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_neighbour_retriever_is_the_sparse_product_without_seen_items(sparse):
    users, hist = _rows(sparse)
    cas = Cascade(sparse, CascadeConfig(neighbours=5, vectors=0, query=0, popular=0))
    drop = [set(hist[n].indices.tolist()) for n in range(len(users))]
    got = cas.retrieve(hist, None, drop, 5)["neighbours"]
    prod = ((hist > 0).astype(np.float32) @ sparse.weights).toarray()
    for n, items in enumerate(got):
        unseen = np.setdiff1d(np.flatnonzero(prod[n]), list(drop[n]))
        assert len(items) == min(5, len(unseen))
        assert not set(items.tolist()) & drop[n]
        assert all(prod[n, items[i]] >= prod[n, items[i + 1]] for i in range(len(items) - 1))
        rest = np.setdiff1d(np.flatnonzero(prod[n]), [*items, *drop[n]])
        assert not len(rest) or prod[n, rest].max() <= prod[n, items[-1]]


def test_popular_fresh_and_vector_retrievers(hybrid):
    _, hist = _rows(hybrid, 3)
    cas = Cascade(hybrid, {"ann": "exact"})
    counts = np.asarray((hybrid.train_matrix > 0).sum(axis=0)).ravel()
    drop = [set(hist[n].indices.tolist()) for n in range(3)]
    found = cas.retrieve(hist, None, drop, 4)
    for n in range(3):
        pop = found["popular"][n]
        assert len(pop) == 4 and not set(pop.tolist()) & drop[n]
        rest = np.setdiff1d(np.arange(N_ITEMS), [*pop, *drop[n]])
        assert counts[pop].min() >= counts[rest].max()
        # fresh: the items without training interactions, last added first
        assert found["fresh"][n].tolist() == np.flatnonzero(counts == 0)[::-1][:4].tolist()
        # vectors: the exact nearest items to the history's mean vector
        v = hybrid.content.vectors
        prof = v[hist[n].indices].mean(axis=0)
        sims = v @ (prof / np.linalg.norm(prof))
        sims[list(drop[n])] = -np.inf
        np.testing.assert_allclose(
            sims[found["vectors"][n]], np.sort(sims)[::-1][:4], rtol=1e-5, atol=1e-6
        )


def test_candidates_are_a_fixed_size_and_deterministic(hybrid):
    users, hist = _rows(hybrid)
    config = CascadeConfig(neighbours=8, vectors=4, query=2, popular=3, fresh=3, ann="hnsw")
    a = Cascade(hybrid, config).candidates(hist)
    b = Cascade(hybrid, config).candidates(hist)
    assert a.shape == (len(users), 20) and (a >= 0).all()
    np.testing.assert_array_equal(a, b)
    assert all(len(set(row.tolist())) == 20 for row in a)


@pytest.mark.parametrize("which", ["sparse", "hybrid"])
def test_cascade_equals_full_ranking_when_the_budget_covers_the_catalog(which, request):
    model = request.getfixturevalue(which)
    cas = Cascade(model, CascadeConfig(neighbours=0, vectors=0, query=0, popular=N_ITEMS))
    ids = [str(u) for u in model.user_vocab.ids[:8]]
    full = model.recommend(ids, k=10)
    got = cas.recommend(ids, k=10)
    assert got.items == full.items
    np.testing.assert_allclose(np.concatenate(got.scores), np.concatenate(full.scores), rtol=1e-5)
    # a request's own candidates are ranked as the model ranks them
    cands = [[str(i) for i in model.item_vocab.ids[:20]]] * 2
    assert (
        cas.recommend(ids[:2], k=5, candidates=cands).items
        == model.recommend(ids[:2], k=5, candidates=cands).items
    )


def test_small_budget_ranks_only_candidates(sparse):
    users, hist = _rows(sparse)
    cas = Cascade(sparse, CascadeConfig(neighbours=3, vectors=0, query=0, popular=2))
    cand = cas.candidates(hist)
    idx, top = cas.rank(users, hist, 4, cand)
    for n in range(len(users)):
        assert set(idx[n].tolist()) <= set(cand[n].tolist())
    full = sparse.score(users, hist)
    np.testing.assert_allclose(top, np.take_along_axis(full, idx, 1), rtol=1e-5)


def test_cli_recommend_cascade(data, sparse, tmp_path):
    from avrec.cli import app

    model_dir = tmp_path / "m"
    sparse.save(model_dir)
    ids = [str(u) for u in sparse.user_vocab.ids[:4]]
    req = tmp_path / "req.jsonl"
    req.write_text("".join(json.dumps({"user_id": u}) + "\n" for u in ids))
    runner = CliRunner()
    out = {}
    for flag in ("--cascade", "--no-cascade"):
        path = tmp_path / f"out{flag}.jsonl"
        res = runner.invoke(
            app,
            ["recommend", str(model_dir), "--input", str(req), "--output", str(path), flag],
        )
        assert res.exit_code == 0, res.output
        out[flag] = [json.loads(line)["items"] for line in path.read_text().splitlines()]
    assert len(out["--cascade"]) == 4 and all(len(r) == 10 for r in out["--cascade"])
    # the default budgets (500) cover this 60-item catalog: the same lists
    assert out["--cascade"] == out["--no-cascade"]
    assert sp.issparse(sparse.weights)


def test_csr_at_reads_a_sparse_matrix_at_given_columns():
    from avrec.models.baselines.sparse_ease import csr_at

    m = sp.random(30, 50, density=0.1, format="csr", random_state=1, dtype=np.float32)
    cols = np.random.default_rng(0).integers(-1, 50, (30, 12))
    want = np.where(cols >= 0, m.toarray()[np.arange(30)[:, None], np.maximum(cols, 0)], 0)
    np.testing.assert_allclose(csr_at(m, cols), want)
    np.testing.assert_array_equal(csr_at(sp.csr_matrix((3, 5)), np.zeros((3, 2), int)), 0)


def test_the_cascade_is_the_default_only_for_large_catalogs_of_models_that_save_by_it(
    sparse, hybrid
):
    from avrec.index.cascade import use_cascade

    assert use_cascade(sparse, CascadeConfig(min_items=N_ITEMS))
    assert not use_cascade(sparse, CascadeConfig(min_items=N_ITEMS + 1))
    assert not use_cascade(hybrid, CascadeConfig(min_items=0))  # it scores the whole catalog


def test_neighbour_lists_are_those_of_scipys_product(sparse):
    """The retriever's own sparse product gives the lists scipy's product gave."""
    from avrec.index.cascade import _ranked_rows

    users, hist = _rows(sparse, 12)
    cas = Cascade(sparse, CascadeConfig(neighbours=20, vectors=0, query=0, popular=0))
    drop = [set(hist[n].indices.tolist()) for n in range(len(users))]
    got = cas.retrieve(hist, None, drop, 20)["neighbours"]
    want = _ranked_rows(((hist > 0).astype(np.float32) @ cas.graph).tocsr(), 20, drop)
    assert [g.tolist() for g in got] == [w.tolist() for w in want]
