"""avrec recommend with re-ranking: per-request "rerank"/"diversity"/"debias" fields, the
command's defaults, and one-line errors (exit 2) for bad values."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from avrec.cli import app

GENRES = ["Drama", "Comedy", "Horror"]
#: items 0-19 Drama (the popular ones), 20-24 Comedy, 25-29 Horror
GENRE = ["Drama"] * 20 + ["Comedy"] * 5 + ["Horror"] * 5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalog")
    pd.DataFrame(
        {"item_id": [f"m{n}" for n in range(30)], "title": [f"t{n}" for n in range(30)]}
    ).assign(genres=GENRE).to_csv(root / "items.csv", index=False)
    # each user: half the Drama items and one other item, so Drama leads by far
    rows = [(f"u{u}", f"m{i}", 1_000 + i) for u in range(40) for i in range(u % 2, 20, 2)]
    rows += [(f"u{u}", f"m{20 + u % 10}", 2_000) for u in range(40)]
    rows += [("fan", f"m{i}", 1) for i in (0, 1, 20, 21, 25, 26)]
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(
        root / "interactions.csv", index=False
    )
    out = tmp_path_factory.mktemp("model") / "popularity"
    result = CliRunner().invoke(
        app, ["train", str(root), "--out", str(out), "--model", "popularity", "--no-media"]
    )
    assert result.exit_code == 0, result.output
    return out


def _recommend(model_dir, tmp_path, requests, *extra):
    req = tmp_path / "req.jsonl"
    req.write_text("\n".join(json.dumps(r) for r in requests) + "\n")
    out = tmp_path / "out.jsonl"
    args = ["recommend", str(model_dir), "--input", str(req), "--output", str(out)]
    result = CliRunner().invoke(app, [*args, "--k", "6", *extra])
    lines = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    return result, lines


def _genres(items: list[str]) -> set[str]:
    return {GENRE[int(item[1:])] for item in items}


def test_rerank_fields_and_defaults(trained, tmp_path):
    requests = [
        {"user_id": "fan"},
        {"user_id": "fan", "rerank": "dpp", "diversity": 0.0},
        {"user_id": "fan", "rerank": "mmr", "diversity": 0.7},
        {"user_id": "fan", "rerank": "dpp", "diversity": 0.7},
        {"user_id": "fan", "rerank": "calibrated", "diversity": 0.9},
        {"user_id": "fan", "rerank": "none", "debias": 3},
    ]
    result, lines = _recommend(trained, tmp_path, requests)
    assert result.exit_code == 0, result.output
    plain = lines[0]["items"]
    assert lines[1]["items"] == plain and len(plain) == 6
    for line in lines:
        assert len(line["items"]) == 6 == len(set(line["items"])) == len(line["explanations"])
    assert _genres(plain) != set(GENRES)  # the popular Drama items fill the plain list
    for line in lines[2:5]:  # the fan's history mixes three genres, and so do these lists
        assert _genres(line["items"]) == set(GENRES), line
    assert lines[5]["items"] != plain
    # scores are the model's, of the items shown
    by_item = dict(zip(lines[0]["items"], lines[0]["scores"], strict=True))
    for item, score in zip(lines[3]["items"], lines[3]["scores"], strict=True):
        assert by_item.get(item, score) == pytest.approx(score)
    # the command's defaults apply where a request says nothing
    result, defaulted = _recommend(
        trained, tmp_path, [{"user_id": "fan"}], "--rerank", "dpp", "--diversity", "0.7"
    )
    assert result.exit_code == 0, result.output
    assert defaulted[0]["items"] == lines[3]["items"]


@pytest.mark.parametrize(
    ("request_fields", "extra", "message"),
    [
        ({"diversity": 1.5}, [], "req.jsonl:1: diversity must be in [0, 1]; got 1.5"),
        ({"rerank": "fancy"}, [], "req.jsonl:1: rerank must be one of none, mmr, dpp"),
        ({"diversity": "high"}, [], "req.jsonl:1: diversity must be a number in [0, 1]"),
        ({}, ["--diversity", "-0.1"], "--diversity must be in [0, 1]; got -0.1"),
        ({}, ["--rerank", "best"], "--rerank must be one of none, mmr, dpp, calibrated"),
        ({}, ["--debias", "11"], "--debias must be in [0, 10]; got 11.0"),
    ],
)
def test_bad_rerank_values_give_one_line_and_exit_2(
    trained, tmp_path, request_fields, extra, message
):
    result, _ = _recommend(trained, tmp_path, [{"user_id": "fan", **request_fields}], *extra)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
