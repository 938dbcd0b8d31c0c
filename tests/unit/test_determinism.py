"""Training does not depend on the machine's speed: the same seed and data give the same saved
model (byte-identical arrays), and a wall-clock cap, which is off by default, is recorded in
the fitted model, its save and the evaluation output when it stops training."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from avrec.data import Dataset
from avrec.evaluation.report import console_table, write_report
from avrec.evaluation.runner import evaluate
from avrec.models.base import Recommender, TrainData
from avrec.models.names import model_targets
from avrec.models.registry import create_model
from avrec.models.timecap import TimeCap
from tests.conftest import piano_action_items

NOQ = {"query_encoder": None}
#: every registered model, with settings small enough to train in a few seconds here
CONFIGS = {
    "popularity": {},
    "itemknn": {},
    "ease": {},
    "sparse-ease": {"neighbors": 8},
    "als": {},
    "bpr": {"iterations": 20},
    "bias": {},
    "rating": {},
    "content": NOQ,
    "hybrid": {**NOQ, "vae": {"hidden": 16, "epochs": 5}},
    "hybrid-ltr": {
        "hybrid": {**NOQ, "vae": {"hidden": 16, "epochs": 5}},
        "n_candidates": 20,
        "n_estimators": 20,
        "min_child_samples": 5,
        "validation_fraction": 0.25,
    },
    "two-tower": {"dim": 16, "max_epochs": 3, "samples_per_user": 2, "media": "off"},
    "sequential": {"dim": 16, "max_epochs": 3, "layers": 1, "batch_size": 16},
    "vae": {"hidden": 16, "epochs": 5},
    # the noise is reproducible only with a noise seed (without one it is fresh, as a release
    # needs)
    "dp-ease": {"noise_seed": 0},
    "dp-popularity": {"noise_seed": 0},
    "dp-two-tower": {"noise_seed": 0, "dim": 8, "epochs": 2, "batch_size": 8, "negatives": 8},
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n_items = 30
    items = piano_action_items(n_items)
    rows = []
    for u in range(40):
        liked = [i for i in range(n_items) if i % 2 == u % 2]
        for t, i in enumerate(rng.choice(liked, size=7, replace=False)):
            rows.append((f"u{u}", f"i{i}", float(rng.integers(1, 6)), 1_000_000 + t))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    text = np.random.default_rng(1).normal(size=(n_items, 24)).astype(np.float32)
    text[np.arange(n_items) % 2 == 1, 0] += 3.0  # the calm pieces share a text direction
    return TrainData.from_dataset(Dataset(items, inter), {"text": text})


def _saved_arrays(model: Recommender, path) -> dict[str, bytes]:
    model.save(path)
    with np.load(path / "state.npz", allow_pickle=False) as z:
        return {
            k: z[k].dtype.str.encode() + str(z[k].shape).encode() + z[k].tobytes() for k in z.files
        }


def test_every_model_is_configured_here():
    """avrec's own models (other tests register stand-ins of their own)."""
    built_in = {n for n, target in model_targets().items() if target.startswith("avrec.")}
    assert set(CONFIGS) == built_in


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_same_seed_same_data_same_saved_arrays(name, data, tmp_path):
    first = _saved_arrays(create_model(name, CONFIGS[name]).fit(data), tmp_path / "a")
    second = _saved_arrays(create_model(name, CONFIGS[name]).fit(data), tmp_path / "b")
    assert first.keys() == second.keys()
    differ = [k for k in first if first[k] != second[k]]
    assert not differ, f"{name}: arrays differ between two fits of one seed: {differ}"
    for run in ("a", "b"):  # nothing capped by default, and the save says so
        manifest = json.loads((tmp_path / run / "manifest.json").read_text())
        assert manifest["fitted"]["time_capped_"] == []


def test_a_different_seed_gives_different_arrays(data, tmp_path):
    """The equality above is not vacuous: the seed reaches the training."""
    a = _saved_arrays(create_model("vae", {**CONFIGS["vae"], "seed": 0}).fit(data), tmp_path / "a")
    b = _saved_arrays(create_model("vae", {**CONFIGS["vae"], "seed": 1}).fit(data), tmp_path / "b")
    assert a["state__dec_w"] != b["state__dec_w"]


def test_time_cap_stops_only_when_set():
    assert not TimeCap(None, "x").reached()
    capped: list[str] = []
    assert not TimeCap(None, "x").stop(0, 5, False, capped)
    cap = TimeCap(0.0, "x")
    assert cap.reached()
    assert not cap.stop(4, 5, False, capped)  # the last epoch ran whole: nothing was cut
    assert cap.stop(1, 5, False, capped)
    assert cap.stop(4, 5, True, capped)
    assert capped == [
        "x: stopped by the 0 s cap after epoch 2 of 5",
        "x: stopped by the 0 s cap in epoch 5 of 5",
    ]


@pytest.mark.parametrize(
    "name,config,what",
    [
        ("vae", {**CONFIGS["vae"], "time_budget_s": 0.0}, "vae"),
        ("hybrid", {**NOQ, "vae": {"hidden": 16, "epochs": 5, "time_budget_s": 0.0}}, "vae"),
        ("two-tower", {**CONFIGS["two-tower"], "time_budget_s": 0.0}, "two-tower"),
        ("sequential", {**CONFIGS["sequential"], "time_budget_s": 0.0}, "sequential"),
    ],
)
def test_a_cap_that_fires_is_recorded_saved_and_loaded(name, config, what, data, tmp_path):
    model = create_model(name, config).fit(data)
    assert len(model.time_capped_) == 1
    assert model.time_capped_[0].startswith(f"{what}: stopped by the 0 s cap")
    loaded = Recommender.load(model.save(tmp_path / "m"))
    assert loaded.time_capped_ == model.time_capped_
    again = create_model(name, CONFIGS[name]).fit(data)  # no cap: nothing recorded
    assert again.time_capped_ == []


def test_hybrid_ltr_records_the_caps_of_its_parts(data, tmp_path):
    config = {
        **CONFIGS["hybrid-ltr"],
        "hybrid": {**NOQ, "vae": {"hidden": 16, "epochs": 5, "time_budget_s": 0.0}},
    }
    model = create_model("hybrid-ltr", config).fit(data)
    note = "vae: stopped by the 0 s cap after epoch 1 of 5"
    assert model.time_capped_ == [f"hybrid (validation fit): {note}", f"hybrid (final fit): {note}"]
    assert Recommender.load(model.save(tmp_path / "m")).time_capped_ == model.time_capped_


def test_evaluation_output_marks_capped_models(data, tmp_path, capsys):
    items = data.items
    inter = data.interactions
    dataset = Dataset(items, inter, name="synthetic")
    configs = {"vae": {**CONFIGS["vae"], "time_budget_s": 0.0}}
    runs = evaluate(dataset, "msr", ["popularity", "vae"], [5], [0], configs, log=lambda m: None)
    by_model = {r.model: r for r in runs}
    assert by_model["popularity"].time_capped == []
    assert by_model["vae"].time_capped == ["vae: stopped by the 0 s cap after epoch 1 of 5"]
    result = write_report(runs, tmp_path / "report", dataset="synthetic", protocol="msr", ks=[5])
    assert list(result["time_capped"]) == ["vae"]
    assert result["models"]["vae"]["time_capped_runs"] == 1
    assert result["models"]["popularity"]["time_capped_runs"] == 0
    page = (tmp_path / "report" / "index.html").read_text()
    assert "<th>vae *</th>" in page and "<th>popularity</th>" in page
    assert "wall-clock cap stopped training" in page
    console_table(result, [5])
    out = capsys.readouterr().out
    assert "* vae: a wall-clock cap stopped training in 1 run(s)" in out
    assert "popularity *" not in out


def test_avrec_train_notes_a_cap_that_fired(data, tmp_path):
    from typer.testing import CliRunner

    from avrec.cli import app

    root = tmp_path / "catalog"
    root.mkdir()
    data.items.to_csv(root / "items.csv", index=False)
    data.interactions[["user_id", "item_id", "rating", "timestamp"]].to_csv(
        root / "interactions.csv", index=False
    )
    settings = tmp_path / "vae.json"
    outputs = {}
    for cap in (None, 0.0):
        settings.write_text(json.dumps({**CONFIGS["vae"], "time_budget_s": cap}))
        result = CliRunner().invoke(
            app,
            [
                "train",
                str(root),
                "--model",
                "vae",
                "--config",
                str(settings),
                "--out",
                str(tmp_path / f"m{cap}"),
            ],
        )
        assert result.exit_code == 0, result.output
        outputs[cap] = result.output
    assert "note: vae: stopped by the 0 s cap after epoch 1 of 5" in outputs[0.0]
    assert "note:" not in outputs[None]
