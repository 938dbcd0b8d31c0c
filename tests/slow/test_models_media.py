"""Media in the matching models, with the real image encoder: a catalog whose titles say nothing
about the items, whose only difference is what the thumbnails show. The two-tower and the
hybrid (the default model) trained by ``avrec train`` read the image vectors that
``avrec encode``'s cache holds for the files and place cold items by them; without them they
cannot tell the two kinds apart."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from avrec.cli import app

N_PER_KIND, N_WARM = 16, 11
NAMES = [
    "Alder",
    "Birch",
    "Cedar",
    "Dune",
    "Ember",
    "Fjord",
    "Glen",
    "Heath",
    "Inlet",
    "Jade",
    "Knoll",
    "Lark",
    "Moss",
    "Nook",
    "Oak",
    "Pine",
    "Quay",
    "Reed",
    "Sage",
    "Tarn",
    "Umber",
    "Vale",
    "Wren",
    "Yew",
    "Zephyr",
    "Amber",
    "Brook",
    "Cove",
    "Dell",
    "Elm",
    "Fern",
    "Grove",
]


def _thumbnail(kind: str, n: int):
    """Kind "grid": a black-and-white checkerboard; kind "sky": a smooth colour gradient. Each
    item varies in size, phase and colour, so no two thumbnails are the same."""
    from PIL import Image

    rng = np.random.default_rng(n)
    size = 160
    y, x = np.mgrid[0:size, 0:size]
    if kind == "grid":
        cell = int(rng.integers(8, 20))
        board = (((x + n) // cell + (y + 2 * n) // cell) % 2).astype(np.float32)
        pixels = np.stack([board * 255] * 3, axis=-1)
    else:
        t = (y / size)[..., None]
        top, bottom = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        pixels = top * (1 - t) + bottom * t
    return Image.fromarray(pixels.astype(np.uint8))


def _catalog(root):
    (root / "images").mkdir(parents=True)
    rows, kinds = [], {}
    names = np.random.default_rng(1).permutation(NAMES)  # titles independent of the kind
    for n in range(2 * N_PER_KIND):
        kind = "grid" if n % 2 else "sky"
        item = f"clip{n}"
        _thumbnail(kind, n).save(root / "images" / f"{item}.png")
        rows.append({"item_id": item, "title": f"Clip {names[n]}", "image": f"images/{item}.png"})
        kinds[item] = kind
    pd.DataFrame(rows).to_csv(root / "items.csv", index=False)
    rng = np.random.default_rng(0)
    inter = []
    for u in range(40):
        kind = "grid" if u % 2 else "sky"
        warm = [i for i, k in kinds.items() if k == kind and int(i[4:]) < 2 * N_WARM]
        for i in rng.choice(warm, 6, replace=False):
            inter.append((f"u{u}", i, 1_000_000 + len(inter)))
    pd.DataFrame(inter, columns=["user_id", "item_id", "timestamp"]).to_csv(
        root / "interactions.csv", index=False
    )
    cold = [i for i in kinds if int(i[4:]) >= 2 * N_WARM]
    return kinds, cold


def _own_kind_share(model_dir, tmp_path, kinds, cold) -> float:
    """Mean share, over the users, of their own kind among the top 3 of the cold items."""
    req = tmp_path / "req.jsonl"
    req.write_text(
        "".join(json.dumps({"user_id": f"u{u}", "candidates": cold}) + "\n" for u in range(40))
    )
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
            "--no-explain",
        ],
    )
    assert result.exit_code == 0, result.output
    shares = []
    for u, line in enumerate(out.read_text().splitlines()):
        own = "grid" if u % 2 else "sky"
        shares.append(np.mean([kinds[i] == own for i in json.loads(line)["items"]]))
    return float(np.mean(shares))


def test_two_tower_places_cold_items_by_their_images(avrec_home, tmp_path):
    from avrec.data.loaders import load_dataset
    from avrec.encoders.understand import encode_catalog

    root = tmp_path / "catalog"
    kinds, cold = _catalog(root)
    runner = CliRunner()
    config = tmp_path / "off.json"
    config.write_text(json.dumps({"media": "off", "threads": 1}))
    config_on = tmp_path / "auto.json"
    config_on.write_text(json.dumps({"threads": 1}))

    # with --no-media train reads the text only
    before = runner.invoke(
        app,
        [
            "train",
            str(root),
            "--model",
            "two-tower",
            "--out",
            str(tmp_path / "m0"),
            "--config",
            str(config_on),
            "--no-media",
        ],
    )
    assert before.exit_code == 0, before.output
    assert "image vectors" not in before.output
    hybrid_before = runner.invoke(
        app, ["train", str(root), "--out", str(tmp_path / "h0"), "--no-media"]
    )
    assert hybrid_before.exit_code == 0, hybrid_before.output

    # train encodes what the cache lacks, through the cache `avrec encode` fills
    understood = encode_catalog(load_dataset(root), ("image",))
    assert understood.results["image"].summary()["ok"] == 32

    with_media = runner.invoke(
        app,
        [
            "train",
            str(root),
            "--model",
            "two-tower",
            "--out",
            str(tmp_path / "m1"),
            "--config",
            str(config_on),
        ],
    )
    assert with_media.exit_code == 0, with_media.output
    assert "media: image vectors of 32 items" in with_media.output
    without = runner.invoke(
        app,
        [
            "train",
            str(root),
            "--model",
            "two-tower",
            "--out",
            str(tmp_path / "m2"),
            "--config",
            str(config),
        ],
    )
    assert without.exit_code == 0, without.output
    assert (
        "media:" not in without.output and "not encoded" not in without.output
    )  # off: not looked up

    hybrid = runner.invoke(app, ["train", str(root), "--out", str(tmp_path / "h1")])
    assert hybrid.exit_code == 0, hybrid.output
    assert "media: image vectors of 32 items" in hybrid.output

    share_with = _own_kind_share(tmp_path / "m1", tmp_path, kinds, cold)
    share_without = _own_kind_share(tmp_path / "m2", tmp_path, kinds, cold)
    assert share_with >= 0.9, (share_with, share_without)
    assert share_without <= 0.75, (share_with, share_without)
    # the default model: its cold-item ranker weighs how the items look against the history
    hybrid_with = _own_kind_share(tmp_path / "h1", tmp_path, kinds, cold)
    hybrid_without = _own_kind_share(tmp_path / "h0", tmp_path, kinds, cold)
    assert hybrid_with >= 0.65 and hybrid_with >= hybrid_without + 0.15, (
        hybrid_with,
        hybrid_without,
    )
    req, out = tmp_path / "why.jsonl", tmp_path / "why-out.jsonl"
    req.write_text(
        "".join(json.dumps({"user_id": f"u{u}", "candidates": cold}) + "\n" for u in range(10))
    )
    result = runner.invoke(
        app,
        ["recommend", str(tmp_path / "h1"), "--input", str(req), "--k", "3", "--output", str(out)],
    )
    assert result.exit_code == 0, result.output
    why = [e for line in out.read_text().splitlines() for e in json.loads(line)["explanations"]]
    assert all(e.startswith("new item (no interactions yet)") for e in why)
    assert any("it looks and sounds like Clip " in e for e in why), why
