"""Summaries and tests: Holm adjustment, paired tests on per-user values, seed spread;
properties of the beyond-accuracy metrics; CLI bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from avrec import metrics as M
from avrec.evaluation.runner import ModelRun
from avrec.evaluation.summary import holm, significance, summarize


def test_holm_hand_computed():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    out = holm([0.5, float("nan"), 0.001])
    assert out[0] == pytest.approx(0.5) and np.isnan(out[1]) and out[2] == pytest.approx(0.002)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=20))
def test_holm_properties(p):
    adj = holm(p)
    assert all(a >= b - 1e-12 and a <= 1.0 for a, b in zip(adj, p, strict=True))
    order = np.argsort(p, kind="stable")
    assert all(np.diff(np.asarray(adj)[order]) >= -1e-12)  # monotone in the raw p-values


def _run(model: str, seed: int, values: np.ndarray) -> ModelRun:
    users = [f"u{n}" for n in range(len(values))]
    per_user = pd.DataFrame({"user_id": users, "train_size": 5, "ndcg@10": values})
    return ModelRun(model, seed, "msr", per_user, {"ndcg@10": float(values.mean())}, 0.1, 1.0)


def test_significance_pairs_by_seed_and_user_against_the_best_baseline():
    rng = np.random.default_rng(0)
    runs = []
    for seed in (0, 1):
        base = rng.random(200)
        runs += [
            _run("popularity", seed, base * 0.5),
            _run("ease", seed, base),
            _run("better", seed, np.clip(base + 0.05, 0, 1)),
            _run("same", seed, base + rng.normal(0, 1e-3, 200)),
        ]
    s = summarize(runs)
    assert s.loc["ease", "ndcg@10_std"] > 0  # spread over the two seeds
    assert s.loc["ease", "ndcg@10_ci95"] > 0
    sig = significance(runs).set_index("model")
    assert set(sig.index) == {"popularity", "better", "same"}
    assert (sig["baseline"] == "ease").all() and (sig["pairs"] == 400).all()
    assert sig.loc["better", "t_holm"] < 1e-10 and sig.loc["better", "difference"] > 0
    assert sig.loc["same", "t_holm"] > 0.01
    assert sig.loc["popularity", "difference"] < 0


def test_intra_list_diversity_of_tiny_vectors():
    """A vector whose squared entries underflow still has cosine 1 with itself (found by the
    property test below: its norm came out 1e-4 off)."""
    v = np.array([[0.0, 5.988389689904799e-161], [0.0, 0.0], [1e-300, -1e-300]])
    assert M.intra_list_diversity([0, 0], v) == pytest.approx(0.0, abs=1e-12)
    assert M.intra_list_diversity([2, 2], v) == pytest.approx(0.0, abs=1e-12)
    assert M.intra_list_diversity([0, 2], v) == pytest.approx(1.0 + np.sqrt(0.5), abs=1e-12)


unit_vectors = st.integers(2, 12).flatmap(
    lambda d: st.lists(st.lists(st.floats(-1, 1), min_size=d, max_size=d), min_size=3, max_size=15)
)


@settings(max_examples=150, deadline=None)
@given(unit_vectors, st.data())
def test_beyond_accuracy_properties(vectors, data):
    v = np.asarray(vectors)
    n = len(v)
    lst = data.draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=n, unique=True))
    div = M.intra_list_diversity(lst, v)
    assert -1e-9 <= div <= 2.0 + 1e-9
    assert M.intra_list_diversity([lst[0], lst[0]], v) == pytest.approx(
        0.0, abs=1e-9
    ) or not np.linalg.norm(v[lst[0]])
    lists = [lst, lst[::-1]]
    assert 0 < M.catalog_coverage(lists, n) <= 1
    assert M.catalog_coverage(lists, n) == pytest.approx(len(set(lst)) / n)
    pop = np.arange(n, dtype=float)
    assert M.novelty(lst, pop, n) >= 0
    assert min(pop[lst]) <= M.popularity_bias(lst, pop) <= max(pop[lst])
    # a list of less popular items is at least as novel
    by_pop = np.argsort(pop)
    assert M.novelty(by_pop[:2], pop, n) >= M.novelty(by_pop[-2:], pop, n)


def test_cli_bad_input(tmp_path, synthetic_dataset):
    from avrec.cli import app

    root = tmp_path / "ds"
    root.mkdir()
    synthetic_dataset.items[["item_id", "title", "genres"]].to_csv(root / "items.csv", index=False)
    synthetic_dataset.interactions[["user_id", "item_id", "rating", "timestamp"]].to_csv(
        root / "interactions.csv", index=False
    )
    cases = {
        ("--models", "nope"): "unknown model",
        ("--k", "ten"): "--k must be comma-separated integers",
        ("--k", "0"): "--k values must be at least 1",
        ("--seeds", "a,b"): "--seeds must be comma-separated integers",
    }
    for args, message in cases.items():
        res = CliRunner().invoke(
            app, ["evaluate", str(root), *args, "--report", str(tmp_path / "r")]
        )
        assert res.exit_code == 2 and message in res.output, (args, res.output)
    (tmp_path / "bad.json").write_text('{"ease": {"l2": 1,}}')
    res = CliRunner().invoke(app, ["evaluate", str(root), "--config", str(tmp_path / "bad.json")])
    assert res.exit_code == 2 and "bad.json:1:" in res.output and "not valid JSON" in res.output
    (tmp_path / "typo.json").write_text('{"ease": {"no_such_setting": 1}}')
    res = CliRunner().invoke(app, ["evaluate", str(root), "--config", str(tmp_path / "typo.json")])
    assert res.exit_code == 2 and "'ease', setting 'no_such_setting'" in res.output
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "missing" in res.output
