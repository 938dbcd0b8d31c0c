"""Ads with pictures: ``image``/``video`` paths in ads.csv validated against the ads file's
folder (a missing or unreadable file names its line), creatives encoded with the catalog's real
image encoder (EfficientNet-Lite0), the visual signal (cosine with the video being watched, 0
plus an indicator where either has no picture) through the scorer, the engagement model, the
explanations, ``avrec ads check|select|fit`` and ``POST /api/ads/select``; engagement files
from before the signal still load."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from avrec.ads.catalog import AdCatalogError, load_ads
from avrec.ads.engagement import EngagementModel
from avrec.ads.scoring import FEATURES
from avrec.cli import app as cli
from avrec.errors import AvrecError

HEADER = "ad_id,advertiser,text,item_id,image,video,bid,daily_budget,frequency_cap"
VISUAL, HAS = FEATURES.index("visual"), FEATURES.index("has_visual")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One AVREC_HOME for the module: the image encoder's ONNX export and cache are shared."""
    path = tmp_path_factory.mktemp("avrec-home")
    saved = {k: os.environ.get(k) for k in ("AVREC_HOME", "AVREC_DATABASE_URL")}
    os.environ["AVREC_HOME"] = str(path)
    os.environ.pop("AVREC_DATABASE_URL", None)
    yield path
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def poster(path, calm: bool, n: int = 0) -> str:
    """A drawn poster: calm ones blue with a yellow moon, loud ones red with flames."""
    img = Image.new("RGB", (200, 300), (40, 60 + 4 * n, 140) if calm else (160, 30 + 4 * n, 20))
    draw = ImageDraw.Draw(img)
    if calm:
        draw.ellipse((50, 60, 150, 160), fill=(240, 220, 80))
    else:
        for k in range(6):
            draw.polygon(
                [(20 + 30 * k, 290), (35 + 30 * k, 120 + 9 * k), (50 + 30 * k, 290)],
                fill=(250, 150, 20),
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path.name


def write_ads(folder, *lines: str):
    path = folder / "ads.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


@pytest.mark.parametrize(
    ("cell", "says"),
    [
        ("absent.png", "media file 'absent.png' does not exist"),
        ("/etc/hostname", "is absolute; paths must be relative to the ads file's folder"),
        ("../outside.png", "escapes the ads file's folder"),
        ("empty.png", "is empty (0 bytes)"),
    ],
)
def test_media_paths_are_checked_with_their_line(tmp_path, cell, says):
    (tmp_path / "empty.png").write_bytes(b"")
    poster(tmp_path / "ok.png", calm=True)
    path = write_ads(tmp_path, "a,S,text,,ok.png,,1,10,1", f"b,S,text,,{cell},,1,10,1")
    with pytest.raises(AdCatalogError) as err:
        load_ads(path)
    assert isinstance(err.value, AvrecError) and says in str(err.value)
    assert f"{path}:3 (column 'image')" in str(err.value)
    res = CliRunner().invoke(cli, ["ads", "check", str(path)])
    assert res.exit_code == 2 and res.output.strip().count("\n") == 0
    assert f"{path}:3 (column 'image')" in res.output


def test_creatives_encode_with_the_catalogs_image_encoder(home, tmp_path):
    from avrec.ads.media import encode_ad_media
    from avrec.encoders.registry import get_encoder

    paths = [poster(tmp_path / "art" / f"{k}.png", calm=k < 2, n=k) for k in range(3)]
    (tmp_path / "art" / "broken.png").write_text("not an image")
    ads = load_ads(
        write_ads(
            tmp_path,
            f"calm1,S,text,,art/{paths[0]},,1,10,1",
            f"calm2,S,text,,art/{paths[1]},,1,10,1",
            f"loud,S,text,,art/{paths[2]},,1,10,1",
            "plain,S,text only,,,,1,10,1",
        )
    )
    vectors = encode_ad_media(ads)
    assert vectors.shape == (4, 1280) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0) and not vectors[3].any()
    direct = get_encoder("image").encode([tmp_path / "art" / paths[0]])[0]
    assert np.allclose(vectors[0], direct, atol=1e-5)  # the encoder itself, not a stand-in
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]  # two calm posters look alike
    bad = load_ads(write_ads(tmp_path, "ok,S,t,,,,1,10,1", "b,S,t,,art/broken.png,,1,10,1"))
    with pytest.raises(AdCatalogError, match=r"ads.csv:3 \(column 'image'\): .*not a readable"):
        encode_ad_media(bad)


def test_a_video_creative_is_its_pooled_frames(home, tmp_path):
    import av

    from avrec.ads.media import encode_ad_media

    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for k in range(8):
            frame = np.full((64, 96, 3), (40, 60 + 8 * k, 140), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    ads = load_ads(write_ads(tmp_path, "v,S,text,,,clip.mp4,1,10,1"))
    vec = encode_ad_media(ads)[0]
    assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)
    (tmp_path / "fake.mp4").write_text("not a video")
    bad = load_ads(write_ads(tmp_path, "v,S,text,,,fake.mp4,1,10,1"))
    with pytest.raises(AdCatalogError, match=r"ads.csv:2 \(column 'video'\)"):
        encode_ad_media(bad)


# ---- a small catalog with posters, a model, ads with pictures --------------------------------


@pytest.fixture(scope="module")
def world(home, tmp_path_factory):
    """Items i0..i29 (odd calm with blue posters, even loud with red ones, i28 and i29 without a
    poster), two taste groups, an ease model; ads with a calm or a loud poster."""
    from avrec.data import Dataset
    from avrec.models.base import TrainData
    from avrec.models.registry import create_model

    root = tmp_path_factory.mktemp("world")
    data = root / "data"
    items = []
    for n in range(30):
        calm = n % 2 == 1
        image = f"images/{poster(data / 'images' / f'i{n}.png', calm, n % 7)}" if n < 28 else None
        items.append(
            {
                "item_id": f"i{n}",
                "title": f"{'Calm piano' if calm else 'Loud action'} {n}",
                "genres": "Music" if calm else "Action",
                "image": image,
            }
        )
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"i{i}", t)
        for u in range(60)
        for t, i in enumerate(rng.choice(range(u % 2, 30, 2), 10, replace=False))
    ]
    pd.DataFrame(items).to_csv(data / "items.csv", index=False)
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    inter.to_csv(data / "interactions.csv", index=False)
    ads_dir = root / "ads"
    calm_art = poster(ads_dir / "calm.png", calm=True, n=3)
    loud_art = poster(ads_dir / "loud.png", calm=False, n=3)
    ads_file = write_ads(
        ads_dir,
        f"calm-look,S,A new album,,{calm_art},,1,100,5",
        f"loud-look,S,A new album,,{loud_art},,1,100,5",
        "no-look,S,A new album,,,,1,100,5",
    )
    ds = Dataset(pd.DataFrame(items), inter.astype({"timestamp": float}), root=data, name="w")
    model = create_model("ease").fit(TrainData.from_dataset(ds))
    model.save(root / "model")
    return root, data, ads_file, model


def test_the_visual_signal_compares_the_video_with_the_creative(world):
    from avrec.ads.learn import ad_scorer
    from avrec.ads.media import with_media
    from avrec.data.loaders import load_dataset

    _, data, ads_file, model = world
    ads = load_ads(ads_file)
    catalog = with_media(model.catalog, load_dataset(data).items)
    assert list(catalog["item_id"]) == list(model.catalog["item_id"])
    scorer = ad_scorer(model, ads, catalog, data, encode_missing=True)
    x = scorer.features(["u1", "u1", "u1"], [["i1"], ["i2"], ["i29"]], ["i1", "i2", "i29"])
    calm, loud, none = 0, 1, 2
    assert x[0, calm, VISUAL] > x[0, loud, VISUAL]  # next to a calm video: the calm creative
    assert x[1, loud, VISUAL] > x[1, calm, VISUAL]  # next to a loud one: the loud creative
    assert x[0, calm, HAS] == 1 and x[0, none, HAS] == 0 and x[0, none, VISUAL] == 0
    assert not x[2, :, HAS].any() and not x[2, :, VISUAL].any()  # i29 has no poster
    assert x[..., VISUAL].min() >= -1 and x[..., VISUAL].max() <= 1 + 1e-6
    # without a media root (a text-only view of the catalog) both visual columns are 0
    plain = ad_scorer(model, ads, model.catalog, data)  # the model's catalog: no media paths
    y = plain.features(["u1"], [["i1"]], ["i1"])
    assert not y[..., VISUAL:].any()
    assert np.allclose(y[..., :VISUAL], x[:1, :, :VISUAL])


def test_engagement_before_the_visual_signal_still_loads(tmp_path):
    old = {
        "features": ["person", "context", "content", "interaction"],
        "coef": [1.0, 0.5, 0.1, -0.1],
        "intercept": -4.0,
    }
    (tmp_path / "old.json").write_text(json.dumps(old))
    model = EngagementModel.load(tmp_path / "old.json")
    x = np.zeros((2, len(FEATURES)))
    x[1, VISUAL], x[1, HAS] = 0.9, 1.0
    assert model.predict(x)[0] == model.predict(x)[1]  # the visual signal has no weight
    assert "visual" not in model.terms(x[1])


def test_cli_select_fit_and_check_with_pictures(world, tmp_path):
    root, data, ads_file, _ = world
    ok = CliRunner().invoke(cli, ["ads", "check", str(ads_file)])
    assert ok.exit_code == 0 and "2 with an image or video" in ok.output, ok.output
    out = tmp_path / "engagement.json"
    res = CliRunner().invoke(
        cli, ["ads", "fit", str(data), str(_trailers(data, tmp_path)), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    learned = EngagementModel.load(out)
    assert learned.features == FEATURES
    assert "visual" in json.loads(out.read_text())["features"]
    engagement = tmp_path / "visual.json"
    EngagementModel.from_dict(
        {"features": list(FEATURES), "coef": [0, 0, 0, 0, 6.0, 0], "intercept": -6.0}
    ).save(engagement)
    requests = tmp_path / "requests.jsonl"
    lines = [{"user_id": "u1", "context_item_id": "i1"}, {"user_id": "u0", "context_item_id": "i2"}]
    requests.write_text("".join(json.dumps(x) + "\n" for x in lines))
    args = ["ads", "select", str(ads_file), str(root / "model"), "--requests", str(requests)]
    args += ["--engagement", str(engagement), "--slots", "3", "--dataset", str(data)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    calm, loud = (json.loads(x) for x in res.output.strip().splitlines())
    assert [a["ad_id"] for a in calm["ads"]][:2] == ["calm-look", "loud-look"]
    assert [a["ad_id"] for a in loud["ads"]][:2] == ["loud-look", "calm-look"]
    top = calm["ads"][0]
    assert top["image"] == "calm.png"  # as written in ads.csv, not a server path
    said = r"its creative looks like the video being watched \(image similarity [01]\.\d\d\)"
    assert any(re.fullmatch(said, r) for r in top["reasons"]), top["reasons"]
    res = CliRunner().invoke(cli, [*args[:-2], "--dataset", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "no such dataset folder (--dataset)" in res.output


def _trailers(data, folder):
    """Trailer ads for four films, each with its film's poster copied beside the ads file."""
    import shutil

    lines = []
    for n in (3, 4, 7, 8):
        shutil.copy(data / "images" / f"i{n}.png", folder / f"i{n}.png")
        lines.append(f"t{n},S,Trailer {n},i{n},i{n}.png,,1,10,1")
    return write_ads(folder, *lines)


def test_service_select_with_pictures(world, tmp_path):
    from avrec.service.app import create_app
    from avrec.service.security import visitor_token
    from avrec.service.settings import ServiceSettings
    from avrec.storage.db import get_engine
    from avrec.storage.ingest import ingest

    root, data, ads_file, _ = world
    from avrec.data.loaders import load_dataset

    url = f"sqlite:///{tmp_path / 'svc.db'}"
    ingest(load_dataset(data), get_engine(url))  # records the dataset folder: the media root
    engagement = tmp_path / "visual.json"
    EngagementModel.from_dict(
        {"features": list(FEATURES), "coef": [0, 0, 0, 0, 6.0, 0], "intercept": -6.0}
    ).save(engagement)
    settings = ServiceSettings(
        model_dir=root / "model",
        database_url=url,
        secret="s",
        ads_file=ads_file,
        ads_engagement=engagement,
        ads_pacing=False,
    )
    with TestClient(create_app(settings)) as c:
        res = c.post(
            "/api/ads/select",
            json={"user_id": "u0", "context_item_id": "i6", "slots": 3},
            headers={"X-Visitor-Token": visitor_token(b"s", "u0")},
        )
        assert res.status_code == 200, res.text
        got = res.json()["ads"]
    assert [a["ad_id"] for a in got][:2] == ["loud-look", "calm-look"]
    assert "image similarity" in " ".join(got[0]["reasons"])
    assert got[0]["image"] == "loud.png"
