"""The exact command-line contract: avrec train / avrec recommend with JSONL requests,
cold items, natural-language requests (English and Chinese), bad requests."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from avrec.cli import app


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalog")
    items = pd.DataFrame(
        {
            "item_id": [f"m{n}" for n in range(30)] + ["cold-space", "cold-cook"],
            "title": [
                ("Space voyage to the stars " if n % 2 else "Cooking pasta with grandma ") + str(n)
                for n in range(30)
            ]
            + ["Astronauts explore a distant galaxy", "Baking bread at home"],
            "genres": ["Sci-Fi" if n % 2 else "Food" for n in range(30)] + ["Sci-Fi", "Food"],
        }
    )
    items.to_csv(root / "items.csv", index=False)
    rows = [
        (f"u{u}", f"m{i}", 5, 1_000_000 + i)
        for u in range(40)
        for i in range(30)
        if i % 2 == u % 2 and (i + u) % 3
    ]
    pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]).to_csv(
        root / "interactions.csv", index=False
    )
    out = tmp_path_factory.mktemp("model") / "hybrid"
    result = CliRunner().invoke(app, ["train", str(root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _recommend(model_dir, tmp_path, requests, *extra):
    req = tmp_path / "req.jsonl"
    req.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in requests) + "\n")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "recommend",
            str(model_dir),
            "--input",
            str(req),
            "--k",
            "3",
            "--output",
            str(out),
            *extra,
        ],
    )
    return result, out


def test_recommend_contract(trained, tmp_path):
    requests = [
        {"user_id": "u1"},
        {"user_id": "visitor", "history": ["m1", "m3", "m5"]},
        {"query": "a film about astronauts in outer space"},
        {"query": "关于宇航员和太空的电影"},
        {"user_id": "u0", "candidates": ["cold-space", "cold-cook"]},
        {"user_id": "u1", "exclude_seen": False},
    ]
    result, out = _recommend(trained, tmp_path, requests)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == len(requests)
    for line, req in zip(lines, requests, strict=True):
        assert set(line) == {"user_id", "items", "scores", "explanations"}
        assert line["user_id"] == req.get("user_id")
        expected = min(3, len(req.get("candidates", range(3))))
        assert len(line["items"]) == len(line["scores"]) == len(line["explanations"]) == expected
    seen_u1 = {f"m{i}" for i in range(30) if i % 2 == 1 and (i + 1) % 3}
    assert not seen_u1 & set(lines[0]["items"])
    assert all(int(i[1:]) % 2 == 1 for i in lines[1]["items"] if i.startswith("m"))
    assert lines[2]["items"][0] in {"cold-space"} | {f"m{i}" for i in range(1, 30, 2)}
    assert "request" in lines[2]["explanations"][0]
    assert lines[3]["items"][0] in {"cold-space"} | {f"m{i}" for i in range(1, 30, 2)}
    assert lines[4]["items"][0] == "cold-cook"  # u0 likes the food items; cold item ranked
    assert seen_u1 & set(lines[5]["items"])


def test_unknown_ids_are_reported_by_line_and_left_out(trained, tmp_path):
    requests = [
        {"user_id": "u1"},
        {"user_id": "visitor", "history": ["m1", "nope-1", "m3"]},
        {"user_id": "u0", "candidates": ["nope-2", "cold-cook", "nope-3"]},
        {"user_id": "stranger"},
    ]
    result, out = _recommend(trained, tmp_path, requests)
    assert result.exit_code == 0, result.output
    warnings = result.stderr.splitlines()
    assert warnings == [
        "warning: "
        + str(tmp_path / "req.jsonl")
        + ": line 2: 1 of 3 history item(s) unknown to the model, "
        "left out: 'nope-1'",
        "warning: "
        + str(tmp_path / "req.jsonl")
        + ": line 3: 2 of 3 candidate item(s) unknown to the model, "
        "left out: 'nope-2', 'nope-3'",
        "warning: "
        + str(tmp_path / "req.jsonl")
        + ": line 4: user 'stranger' is unknown to the model and "
        "the request has no history or query: answered as an empty history",
    ]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 4
    assert lines[2]["items"] == ["cold-cook"]  # the known candidate is still ranked
    assert all(int(i[1:]) % 2 == 1 for i in lines[1]["items"] if i.startswith("m"))


def test_bad_requests_are_reported_by_line(trained, tmp_path):
    req = tmp_path / "bad.jsonl"
    req.write_text(
        '{"user_id": "u1"}\n{"user_id": \n{"user_id": "u1", "k": 3}\n{"history": "m1"}\n'
    )
    result = CliRunner().invoke(
        app, ["recommend", str(trained), "--input", str(req), "--output", str(tmp_path / "o.jsonl")]
    )
    assert result.exit_code == 2
    assert "bad.jsonl:2: invalid JSON" in result.output
    assert "bad.jsonl:3 (column 'k')" in result.output
    assert "bad.jsonl:4 (column 'history')" in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_unknown_model_and_missing_model_dir(tmp_path):
    result = CliRunner().invoke(
        app, ["train", str(tmp_path), "--model", "nope", "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 2 and "unknown model 'nope'" in result.output
    (tmp_path / "r.jsonl").write_text('{"user_id": "a"}\n')
    result = CliRunner().invoke(
        app,
        [
            "recommend",
            str(tmp_path / "missing"),
            "--input",
            str(tmp_path / "r.jsonl"),
            "--output",
            str(tmp_path / "o.jsonl"),
        ],
    )
    assert result.exit_code == 2 and "not a saved avrec model" in result.output


@pytest.mark.parametrize(
    ("model", "scalable"),
    [
        (
            "hybrid",
            'hybrid with {"backbone": {"kind": "sparse"}}, sparse-ease, als, bpr, two-tower',
        ),
        ("ease", "sparse-ease, als, bpr, two-tower"),
        ("rating", "bias"),
    ],
)
def test_catalog_too_large_for_memory_is_refused_up_front(model, scalable, tmp_path, monkeypatch):
    """A dense items x items model on a machine without the memory for it: a clear error
    naming the catalog size and the models that scale, exit code 2, nothing written."""
    from avrec.models import memory

    root = tmp_path / "data"
    root.mkdir()
    pd.DataFrame({"item_id": ["a", "b", "c"], "title": ["A", "B", "C"]}).to_csv(
        root / "items.csv", index=False
    )
    pd.DataFrame(
        {"user_id": ["u", "u", "v"], "item_id": ["a", "b", "c"], "rating": [4, 2, 5]}
    ).to_csv(root / "interactions.csv", index=False)
    monkeypatch.setattr(memory, "available_bytes", lambda: 10)  # bytes: less than 3 x 3 cells need
    result = CliRunner().invoke(
        app, ["train", str(root), "--model", model, "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 2, result.output
    assert f"{model}: a catalog of 3 items needs about" in result.output
    assert f"({scalable})" in result.output
    assert not (tmp_path / "m").exists()
    monkeypatch.setattr(memory, "available_bytes", lambda: None)  # unknown: no check, it trains
    result = CliRunner().invoke(
        app, ["train", str(root), "--model", model, "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 0, result.output


def test_default_model_falls_back_when_the_catalog_is_too_large(tmp_path, monkeypatch):
    """Without --model, a catalog whose dense items x items weights do not fit in memory trains
    the hybrid on its sparse backbone instead of refusing, and says why."""
    from avrec.models import memory
    from avrec.models.base import Recommender

    root = tmp_path / "data"
    root.mkdir()
    pd.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(12)],
            "title": [f"{'Space' if n % 2 else 'Cooking'} film {n}" for n in range(12)],
        }
    ).to_csv(root / "items.csv", index=False)
    pd.DataFrame(
        [(f"u{u}", f"i{i}") for u in range(8) for i in range(12) if (i + u) % 3],
        columns=["user_id", "item_id"],
    ).to_csv(root / "interactions.csv", index=False)
    monkeypatch.setattr(memory, "available_bytes", lambda: 100)
    result = CliRunner().invoke(app, ["train", str(root), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "note: hybrid: a catalog of 12 items needs about" in result.stderr
    assert "training hybrid with its sparse backbone instead" in result.stderr
    large = Recommender.load(tmp_path / "m")
    assert large.name == "hybrid" and large.config.backbone.kind == "sparse"
    assert large.config.content.query_encoder == "text-en"  # no second catalog encoding
    monkeypatch.setattr(memory, "available_bytes", lambda: None)
    result = CliRunner().invoke(app, ["train", str(root), "--out", str(tmp_path / "m2")])
    assert result.exit_code == 0 and not result.stderr
    dense = Recommender.load(tmp_path / "m2")
    assert dense.name == "hybrid" and dense.config.backbone.kind == "ease"


def test_a_large_catalog_reads_its_text_with_the_fast_encoder(avrec_home, tmp_path, monkeypatch):
    """Above ``content.fast_above`` items (lowered here) the catalog's text is encoded by
    ``text-fast`` only (MiniLM never reads it), the model says so, and after loading it
    answers requests in that encoder's space."""
    from avrec.models import memory
    from avrec.models.base import Recommender

    root = tmp_path / "data"
    root.mkdir()
    pd.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(12)],
            "title": [f"{'Space trip' if n % 2 else 'Cooking pasta'} film {n}" for n in range(12)],
        }
    ).to_csv(root / "items.csv", index=False)
    pd.DataFrame(
        [(f"u{u}", f"i{i}") for u in range(8) for i in range(12) if (i + u) % 3],
        columns=["user_id", "item_id"],
    ).to_csv(root / "interactions.csv", index=False)
    (tmp_path / "c.json").write_text(json.dumps({"content": {"fast_above": 10}}))
    monkeypatch.setattr(memory, "available_bytes", lambda: 100)
    args = ["train", str(root), "--out", str(tmp_path / "m"), "--config", str(tmp_path / "c.json")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "learned content: encoder=text-fast, query_encoder=text-fast" in result.output
    cached = {p.name.split("__")[0] for p in (avrec_home / "cache" / "embeddings").iterdir()}
    assert cached == {"text-fast"}
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["learned"]["content"]["encoder"] == "text-fast"
    model = Recommender.load(tmp_path / "m")
    assert model.content.query_vectors.shape == (12, 256)
    assert model.content.encode_queries(["space voyage"]).shape == (1, 256)


def test_available_memory_is_read_from_the_kernel():
    from pathlib import Path

    from avrec.models.memory import available_bytes

    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        pytest.skip("no /proc/meminfo on this system: the memory check is skipped there")
    total = next(
        int(line.split()[1]) * 1024
        for line in meminfo.read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    assert 0 < available_bytes() <= total


def test_available_memory_respects_a_cgroup_limit(tmp_path):
    """Under a cgroup limit the headroom counts (page cache as free); the lower one wins."""
    from avrec.models.memory import available_bytes

    gib = 2**30
    proc, cgroup = tmp_path / "proc", tmp_path / "cgroup"
    proc.mkdir(), cgroup.mkdir()
    (proc / "meminfo").write_text(
        f"MemTotal: {32 * gib // 1024} kB\nMemAvailable: {10 * gib // 1024} kB\n"
    )
    (cgroup / "memory.max").write_text(f"{4 * gib}\n")
    (cgroup / "memory.current").write_text(f"{3 * gib}\n")
    (cgroup / "memory.stat").write_text(f"anon {gib}\nfile {2 * gib}\n")
    assert available_bytes(proc, cgroup) == 3 * gib  # 4 - (3 - 2)
    (cgroup / "memory.max").write_text("max\n")
    assert available_bytes(proc, cgroup) == 10 * gib
    assert available_bytes(tmp_path / "none", tmp_path / "none") is None


def test_train_reads_what_avrec_encode_heard_in_the_videos(avrec_home, tmp_path):
    """A video's speech, transcribed by an earlier `avrec encode` (here put into its cache),
    joins the item's text when the default model is trained: a request about it finds the
    video whose title says nothing."""
    import numpy as np

    from avrec.encoders.cache import EmbeddingCache, file_key
    from avrec.encoders.understand import VERSIONS

    root = tmp_path / "videos"
    (root / "v").mkdir(parents=True)
    said = {
        3: "today we bake a loaf of sourdough bread in the oven",
        7: "the goalkeeper saves a penalty",
    }
    for n in range(12):
        (root / "v" / f"{n}.mp4").write_bytes(f"video bytes {n}".encode())
        if n in said:
            EmbeddingCache(f"video@{VERSIONS['video']}").put_many(
                [file_key(root / "v" / f"{n}.mp4")],
                np.ones((1, 1280), np.float32),
                [{"transcript": said[n]}],
            )
    pd.DataFrame(
        {
            "item_id": [f"v{n}" for n in range(12)],
            "title": [f"Episode {n}" for n in range(12)],
            "video": [f"v/{n}.mp4" for n in range(12)],
        }
    ).to_csv(root / "items.csv", index=False)
    pd.DataFrame(
        [(f"u{u}", f"v{(u + i) % 12}", 1_000 + i) for u in range(20) for i in range(4)],
        columns=["user_id", "item_id", "timestamp"],
    ).to_csv(root / "interactions.csv", index=False)

    result = CliRunner().invoke(app, ["train", str(root), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "media: transcript of 2 videos joins their text" in result.output
    # train encodes the videos the cache lacks; these ten are not videos at all
    assert "note: 10 items' video files could not be encoded" in result.output
    answer, out = _recommend(
        tmp_path / "m", tmp_path, [{"query": "baking bread at home"}, {"query": "a football match"}]
    )
    assert answer.exit_code == 0, answer.output
    firsts = [json.loads(line)["items"][0] for line in out.read_text().splitlines()]
    assert firsts == ["v3", "v7"]
