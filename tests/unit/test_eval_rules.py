"""The evaluation with business rules: the lists made again with the rules and scored as
``ndcg@k+rules``; rules that change nothing cost nothing; a cap holds in every list."""

from __future__ import annotations

import numpy as np
import pandas as pd

from avrec.data import Dataset
from avrec.evaluation.runner import evaluate
from avrec.rerank.rules import parse_rules


def _data(n_users=60, n_items=50, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    p = 1.0 / (1 + np.arange(n_items))
    rows = [
        (f"u{u}", f"i{i}", 1_000 + 10 * t + u)
        for u in range(n_users)
        for t, i in enumerate(rng.choice(n_items, 12, replace=False, p=p / p.sum()))
    ]
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "genres": ["A|B" if i % 2 else "C" for i in range(n_items)],
            "tags": [f"director:D{i % 4}" for i in range(n_items)],
        }
    )
    return Dataset(items, pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))


def _run(rules: str):
    (run,) = evaluate(
        _data(), "msr", ["itemknn"], ks=[5], rules=parse_rules(rules), log=lambda _: None
    )
    return run


def test_rules_that_change_nothing_cost_nothing():
    run = _run("rules:\n- name: none\n  filter: {exclude: {item: nothing-here}}\n")
    assert run.metrics["ndcg@5+rules"] == run.metrics["ndcg@5"]
    assert run.metrics["rules_changed@5"] == 0.0
    assert "ndcg@5+rules" in run.per_user.columns


def test_a_cap_holds_in_every_list_and_has_a_price():
    run = _run("rules:\n- name: cap\n  cap: {field: director, max: 1, top: 5}\n")
    assert run.metrics["rules_cap_violations"] == 0.0
    assert run.metrics["rules_length@5"] == 4.0  # four directors: the fifth slot stays empty
    assert run.metrics["rules_changed@5"] == 1.0
    assert run.metrics["ndcg@5+rules"] < run.metrics["ndcg@5"]


def test_the_shared_pass_equals_a_pass_of_its_own():
    """The runner makes the rules' lists from its own score batches; a separate pass over
    the test users (rules_per_user) gives the same per-user figures."""
    from avrec.evaluation.leakage import isolated
    from avrec.evaluation.protocols import make_splits
    from avrec.evaluation.rules import rules_per_user
    from avrec.models.base import TrainData
    from avrec.models.registry import create_model
    from avrec.rerank.rules import compile_rules

    text = "rules:\n- name: cap\n  cap: {field: director, max: 1, top: 5}\n"
    data = _data()
    run = _run(text)
    (split,) = make_splits(data, "msr", 0)
    train = data.with_interactions(split.train)
    with isolated(data, train) as view:
        fit_data = TrainData.from_dataset(train)
        fit_data.root = view
        model = create_model("itemknn", {"seed": 0})
        model.fit(fit_data)
        alone, notes = rules_per_user(
            model, split, compile_rules(parse_rules(text), data.items), [5]
        )
    shared = run.per_user[alone.columns]
    pd.testing.assert_frame_equal(shared.reset_index(drop=True), alone)
    assert notes["rules_changed@5"] == run.metrics["rules_changed@5"]


def test_evaluate_cli_reports_the_rules_cost(tmp_path, synthetic_dataset):
    import json

    from typer.testing import CliRunner

    from avrec.cli import app

    root = tmp_path / "ds"
    root.mkdir()
    synthetic_dataset.items[["item_id", "title", "genres", "kind"]].to_csv(
        root / "items.csv", index=False
    )
    synthetic_dataset.interactions[["user_id", "item_id", "timestamp"]].to_csv(
        root / "interactions.csv", index=False
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: movies\n    filter: {include: {kind: movie}}\n")
    args = ["evaluate", str(root), "--models", "popularity", "--k", "5", "--no-text-features"]
    report = tmp_path / "report"
    result = CliRunner().invoke(app, [*args, "--report", str(report), "--rules", str(rules)])
    assert result.exit_code == 0, result.output
    models = json.loads((report / "results.json").read_text())["models"]
    for figures in models.values():  # half the catalog is music: the lists change
        assert figures["rules_changed@5"] > 0 and figures["rules_cap_violations"] == 0
        assert 0 <= figures["ndcg@5+rules"] <= 1
    assert "ndcg@5+rules" in result.output
    rules.write_text("rules:\n  - name: movies\n    filter: {include: {studio: x}}\n")
    bad = CliRunner().invoke(app, [*args, "--report", str(report), "--rules", str(rules)])
    assert bad.exit_code == 2
    assert bad.output.strip().startswith(f"error: {rules}:2: rule 'movies': the catalog has no")
