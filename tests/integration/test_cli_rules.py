"""avrec recommend --rules and avrec rules check: each rule kind on a small catalog with
directors and years, a cap that holds in every user's list, and one-line errors (exit 2)
that name the line of a bad rules file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from avrec.cli import app

#: item n: director D{n % 5}, year 1980 + n, genre Drama for n < 20 else Comedy
N = 30


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalog")
    pd.DataFrame(
        {
            "item_id": [f"m{n}" for n in range(N)],
            "title": [f"t{n}" for n in range(N)],
            "genres": ["Drama" if n < 20 else "Comedy" for n in range(N)],
            "tags": [f"director:D{n % 5}|cast:C{n % 3}" for n in range(N)],
            "kind": ["movie" if n % 2 else "series" for n in range(N)],
            "year": [1980 + n for n in range(N)],
        }
    ).to_csv(root / "items.csv", index=False)
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"m{i}", t)
        for u in range(40)
        for t, i in enumerate(rng.choice(N, 8, replace=False, p=_popularity()))
    ]
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(
        root / "interactions.csv", index=False
    )
    out = tmp_path_factory.mktemp("model") / "itemknn"
    result = CliRunner().invoke(
        app, ["train", str(root), "--out", str(out), "--model", "itemknn", "--no-media"]
    )
    assert result.exit_code == 0, result.output
    return out, root


def _popularity() -> np.ndarray:
    p = 1.0 / (1 + np.arange(N))
    return p / p.sum()


def recommend(trained, tmp_path, rules: dict | None, users=("u0",), k=10, *extra):
    model, _ = trained
    req = tmp_path / "req.jsonl"
    req.write_text("".join(json.dumps({"user_id": u}) + "\n" for u in users))
    out = tmp_path / "out.jsonl"
    args = ["recommend", str(model), "--input", str(req), "--output", str(out), "--k", str(k)]
    if rules is not None:
        (tmp_path / "rules.json").write_text(json.dumps(rules, indent=1))
        args += ["--rules", str(tmp_path / "rules.json")]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    return [json.loads(x) for x in out.read_text().splitlines()]


def n(item: str) -> int:
    return int(item[1:])


def test_filters_and_availability(trained, tmp_path):
    rules = {"rules": [{"name": "movies", "filter": {"include": {"kind": "movie"}}}]}
    (line,) = recommend(trained, tmp_path, rules)
    assert len(line["items"]) == 10 and all(n(i) % 2 for i in line["items"])
    rules = {"rules": [{"name": "no-D0", "filter": {"exclude": {"director": "d0"}}}]}
    assert all(n(i) % 5 for i in recommend(trained, tmp_path, rules)[0]["items"])
    window = {"match": {"year": {"max": 1994}}, "until": "2001-01-01"}  # closed long ago
    rules = {"rules": [{"name": "old-licence", "availability": window}]}
    assert all(n(i) >= 15 for i in recommend(trained, tmp_path, rules)[0]["items"])


def test_boost_and_freshness_move_items_and_say_so(trained, tmp_path):
    (plain,) = recommend(trained, tmp_path, None)
    last = plain["items"][-1]
    rules = {"rules": [{"name": "promo", "boost": {"match": {"item": [last]}, "weight": 10}}]}
    (line,) = recommend(trained, tmp_path, rules)
    assert line["items"][0] == last
    assert line["explanations"][0].endswith("boosted by rule 'promo'")
    rules = {"rules": [{"name": "new", "freshness": {"half_life": 1, "weight": 20}}]}
    (line,) = recommend(trained, tmp_path, rules, ["u0"], 3, "--no-explain")
    assert [n(i) for i in line["items"]] == sorted((n(i) for i in line["items"]), reverse=True)
    assert n(line["items"][0]) >= N - 3


def test_pin_and_cap_hold_in_every_list(trained, tmp_path):
    rules = {
        "rules": [
            {"name": "one-per-director", "cap": {"field": "director", "max": 1, "top": 5}},
            {"name": "feature", "pin": {"item": "m29", "position": 3}},
        ]
    }
    users = [f"u{u}" for u in range(40)]
    lines = recommend(trained, tmp_path, rules, users, 8, "--rerank", "dpp", "--diversity", "0.3")
    for line in lines:
        items = [n(i) for i in line["items"]]
        assert len(items) == 8
        assert len({i % 5 for i in items[:5]}) == 5  # m29 is by D4 and counts too
        seen = line["items"]
        if "m29" in seen:
            assert seen.index("m29") == 2 and "pinned" in line["explanations"][2].lower()


def test_rules_check_and_bad_files(trained, tmp_path):
    _, dataset = trained
    good = tmp_path / "rules.yaml"
    good.write_text(
        "rules:\n  - name: cap\n    cap: {field: director, max: 1, top: 10}\n"
        "  - name: promo\n    boost: {match: {genre: comedy}, weight: 0.5}\n"
    )
    result = CliRunner().invoke(app, ["rules", "check", str(good), "--catalog", str(dataset)])
    assert result.exit_code == 0, result.output
    assert "2 rule(s) valid" in result.output and "director has 5 values" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: cap\n    cap: {field: director, max: -1, top: 10}\n")
    for args in (["rules", "check", str(bad)], _recommend_args(trained, tmp_path, bad)):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2
        lines = result.output.strip().splitlines()
        assert lines == [
            f"error: {bad}:3: rule 'cap': cap.max: Input should be greater than or equal to 1"
        ]
    bad.write_text("rules:\n  - name: cap\n    cap: {field: studio, max: 1, top: 10}\n")
    result = CliRunner().invoke(app, ["rules", "check", str(bad), "--catalog", str(dataset)])
    assert (
        result.exit_code == 2
        and f"{bad}:2: rule 'cap': the catalog has no attribute" in result.output
    )


def _recommend_args(trained, tmp_path, rules) -> list[str]:
    model, _ = trained
    req = tmp_path / "one.jsonl"
    req.write_text('{"user_id": "u0"}\n')
    out = tmp_path / "o.jsonl"
    return [
        "recommend",
        str(model),
        "--input",
        str(req),
        "--output",
        str(out),
        "--rules",
        str(rules),
    ]
