"""``avrec train --privacy-epsilon``: the default becomes the private item-item model (said in
one line), a model without differential privacy is refused in one line (exit 2), and the saved
manifest records the budget."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from avrec.cli import app
from tests.integration.test_cli_errors import assert_user_error, avrec


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dp")
    pd.DataFrame({"item_id": [f"m{n}" for n in range(12)], "title": "a film"}).to_csv(
        root / "items.csv", index=False
    )
    rows = [(f"u{u}", f"m{i}", 1_000 + i) for u in range(30) for i in range(12) if (i + u) % 3]
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(
        root / "interactions.csv", index=False
    )
    return root


def test_privacy_epsilon_trains_the_private_model_and_records_the_budget(dataset, tmp_path):
    out = tmp_path / "m"
    result = CliRunner().invoke(
        app, ["train", str(dataset), "--out", str(out), "--privacy-epsilon", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "note: --privacy-epsilon: training dp-ease" in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "dp-ease"
    record = manifest["privacy"]
    assert record["epsilon"] == 2.0 and record["delta"] == 1e-5  # min(1e-5, 1/(10 * 30))
    assert {"mechanism", "clipping", "noise_multiplier"} <= set(record)
    assert '"noise_multiplier"' in result.stdout  # printed at the end of train


def test_privacy_epsilon_with_two_tower_trains_it_by_dp_sgd(dataset, tmp_path):
    out = tmp_path / "m"
    args = ["train", str(dataset), "--out", str(out), "--model", "two-tower"]
    result = CliRunner().invoke(app, [*args, "--privacy-epsilon", "8"])
    assert result.exit_code == 0, result.output
    assert "note: --privacy-epsilon: training dp-two-tower" in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "dp-two-tower"
    record = manifest["privacy"]
    assert record["epsilon"] == 8.0 and record["delta"] == 1e-5
    assert record["mechanism"].startswith("dp-sgd") and record["epsilon_spent"] <= 8.0
    assert {"noise_multiplier", "sampling_rate", "steps", "clipping"} <= set(record)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    version = CliRunner().invoke(app, ["models", "register", str(out), "--database-url", url])
    assert version.exit_code == 0, version.output
    shown = CliRunner().invoke(
        app, ["models", "show", version.stdout.strip(), "--database-url", url]
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["privacy"]["noise_multiplier"] == record["noise_multiplier"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--privacy-delta", "1e-6"], ["--privacy-delta needs --privacy-epsilon"]),
        (["--privacy-epsilon", "0"], ["--privacy-epsilon", "positive"]),
        (["--privacy-epsilon", "1", "--privacy-delta", "2"], ["--privacy-delta", "(0, 1)"]),
        (["--privacy-epsilon", "1", "--privacy-delta", "0.1"], ["not below 1/n_users"]),
        (["--model", "ease", "--privacy-epsilon", "1"], ["'ease'", "differential privacy"]),
        (["--model", "two-tower", "--privacy-epsilon", "-1"], ["--privacy-epsilon", "positive"]),
    ],
)
def test_privacy_mistakes_are_one_line(dataset, tmp_path, args, words):
    res = avrec("train", str(dataset), "--out", str(tmp_path / "m"), *args, home=tmp_path)
    assert_user_error(res, *words)


def test_audit_privacy_reports_the_attack_auc(dataset, tmp_path):
    members = tmp_path / "members"
    members.mkdir()
    (members / "items.csv").write_text((dataset / "items.csv").read_text())
    inter = pd.read_csv(dataset / "interactions.csv")
    inter[inter.user_id.isin([f"u{u}" for u in range(15)])].to_csv(
        members / "interactions.csv", index=False
    )
    out = tmp_path / "ease"
    assert (
        CliRunner()
        .invoke(app, ["train", str(members), "--model", "ease", "--out", str(out)])
        .exit_code
        == 0
    )
    result = CliRunner().invoke(app, ["audit", "privacy", str(out), str(dataset)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["members"] == 15 and report["non_members"] == 15 and 0 <= report["auc"] <= 1
    res = avrec("audit", "privacy", str(out), str(members), home=tmp_path)  # no one else in it
    assert_user_error(res, "trained on and people it was not")
