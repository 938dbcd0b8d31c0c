"""Batch work as Dask tasks on a real LocalCluster: ``avrec evaluate`` and ``avrec recommend``
give the same bytes as in-process; bad cluster options are one line, exit 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from avrec.cli import app
from avrec.cluster import LOCAL, ClusterError, cluster_address


def test_cluster_address(monkeypatch):
    monkeypatch.delenv("AVREC_DASK_SCHEDULER", raising=False)
    assert cluster_address(None, None) is None
    assert cluster_address(None, 1) is None
    assert cluster_address(None, 2) == LOCAL
    assert cluster_address("tcp://10.0.0.1:8786", 2) == "tcp://10.0.0.1:8786"
    monkeypatch.setenv("AVREC_DASK_SCHEDULER", "tcp://127.0.0.1:8786")
    assert cluster_address(None, None) == "tcp://127.0.0.1:8786"
    assert cluster_address("local", None) == LOCAL
    with pytest.raises(ClusterError, match="scheduler address"):
        cluster_address("my-laptop", None)
    with pytest.raises(ClusterError, match="at least 1"):
        cluster_address(None, 0)


@pytest.fixture
def catalog(tmp_path, synthetic_dataset):
    root = tmp_path / "ds"
    root.mkdir()
    synthetic_dataset.items[["item_id", "title", "genres", "kind"]].to_csv(
        root / "items.csv", index=False
    )
    synthetic_dataset.interactions[["user_id", "item_id", "rating", "timestamp"]].to_csv(
        root / "interactions.csv", index=False
    )
    return root


def _evaluate(root, report, *extra):
    args = ["evaluate", str(root), "--protocol", "msr", "--models", "ease", "--seeds", "0,1"]
    result = CliRunner().invoke(
        app, [*args, "--report", str(report), "--no-text-features", "--no-media", *extra]
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_evaluate_and_recommend_on_a_local_cluster(tmp_path, catalog, monkeypatch):
    monkeypatch.delenv("AVREC_DASK_SCHEDULER", raising=False)
    _evaluate(catalog, tmp_path / "one")
    _evaluate(catalog, tmp_path / "two", "--workers", "2")
    for name in ("results.json", "per_user.csv"):
        one = (tmp_path / "one" / name).read_bytes()
        assert one == (tmp_path / "two" / name).read_bytes(), name
    results = json.loads((tmp_path / "one" / "results.json").read_text())
    assert results["seeds"] == [0, 1] and len(results["models"]) == 4  # 4 baselines
    assert results["models"]["ease"]["ndcg@10"] > 0.2
    resources = json.loads((tmp_path / "two" / "resources.json").read_text())
    assert resources["models"]["ease"]["fit_seconds"] >= 0 and resources["created"]

    model = tmp_path / "model"
    trained = CliRunner().invoke(
        app, ["train", str(catalog), "--out", str(model), "--model", "ease", "--no-media"]
    )
    assert trained.exit_code == 0, trained.output
    requests = [{"user_id": f"u{u}"} for u in range(60)]
    requests += [{"history": ["i1", "i3"]}, {"user_id": "u5", "rerank": "dpp", "diversity": 0.5}]
    (tmp_path / "req.jsonl").write_text("\n".join(json.dumps(r) for r in requests) + "\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nrules:\n  - name: one-kind\n    cap: {field: kind, max: 1, top: 2}\n"
    )
    outputs = []
    for extra in ([], ["--cluster", "local", "--workers", "2"]):
        for ruled in ([], ["--rules", str(rules)]):
            out = tmp_path / f"out{len(outputs)}.jsonl"
            args = ["recommend", str(model), "--input", str(tmp_path / "req.jsonl")]
            result = CliRunner().invoke(app, [*args, "--output", str(out), *extra, *ruled])
            assert result.exit_code == 0, result.output
            outputs.append(out.read_bytes())
    assert outputs[0] == outputs[2] and outputs[1] == outputs[3] and outputs[0] != outputs[1]
    assert len(outputs[0].splitlines()) == len(requests)


def test_bad_cluster_options_are_one_line(tmp_path, catalog, monkeypatch):
    monkeypatch.delenv("AVREC_DASK_SCHEDULER", raising=False)
    base = ["evaluate", str(catalog), "--no-text-features", "--report", str(tmp_path / "r")]
    for extra, message in (
        (["--cluster", "my-laptop"], "scheduler address"),
        (["--workers", "0"], "at least 1"),
        (["--cluster", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
    ):
        result = CliRunner().invoke(app, [*base, *extra])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


def test_sparse_backbone_on_a_local_cluster_gives_the_same_weights(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    from avrec.cluster import active_client, dask_client
    from avrec.models.baselines.sparse_ease import sparse_ease_weights

    monkeypatch.delenv("AVREC_DASK_SCHEDULER", raising=False)
    rng = np.random.default_rng(0)
    n_users, n_items = 400, 2600  # several row blocks (1024) and solve batches (256)
    x = sp.random(n_users, n_items, density=0.02, format="csr", random_state=rng)
    x.data[:] = 1.0
    side = rng.normal(size=(n_items, 8))
    settings = [{}, {"side": side, "side_weight": 2.0, "side_in_neighbours": True}]
    local = [sparse_ease_weights(x, 10.0, 20, 0.3, **s) for s in settings]
    with dask_client("local", 2) as client:
        assert active_client() is client
        spread = [sparse_ease_weights(x, 10.0, 20, 0.3, **s) for s in settings]
    assert active_client() is None
    for a, b in zip(local, spread, strict=True):
        assert a.nnz > n_items and (a != b).nnz == 0
        assert np.array_equal(a.data, b.data) and np.array_equal(a.indices, b.indices)

    # avrec train --workers 2: the same saved weights as in-process
    root = tmp_path / "ds"
    root.mkdir()
    items = [f"i{j}" for j in range(n_items)]
    pd.DataFrame({"item_id": items, "title": items}).to_csv(root / "items.csv", index=False)
    coo = x.tocoo()
    pd.DataFrame(
        {"user_id": [f"u{u}" for u in coo.row], "item_id": [items[j] for j in coo.col]}
    ).to_csv(root / "interactions.csv", index=False)
    saved = []
    for extra in ([], ["--workers", "2"]):
        out = tmp_path / f"m{len(saved)}"
        args = ["train", str(root), "--model", "sparse-ease", "--out", str(out), "--no-media"]
        result = CliRunner().invoke(app, [*args, *extra])
        assert result.exit_code == 0, result.output
        with np.load(out / "state.npz") as state:
            saved.append({name: state[name] for name in state.files})
    assert saved[0].keys() == saved[1].keys()
    assert sum(v.size for v in saved[0].values()) > n_items  # the weights are there
    for name, value in saved[0].items():
        assert np.array_equal(value, saved[1][name]), name
