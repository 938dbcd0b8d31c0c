"""The encoders with the real models on real data: ml-100k posters, the MicroLens videos,
Chinese vs English text, espeak-ng speech vs a synthetic musical tone, corrupt media."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import shared_path

RATE = 16_000


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One AVREC_HOME for the module, so the ONNX exports and caches are shared by its tests."""
    import os

    path = tmp_path_factory.mktemp("avrec-home")
    old = os.environ.get("AVREC_HOME")
    old_url = os.environ.pop("AVREC_DATABASE_URL", None)
    os.environ["AVREC_HOME"] = str(path)
    yield path
    if old_url is not None:
        os.environ["AVREC_DATABASE_URL"] = old_url
    if old is None:
        os.environ.pop("AVREC_HOME", None)
    else:
        os.environ["AVREC_HOME"] = old


def _poster_sample(n: int = 40) -> tuple[Path, pd.DataFrame]:
    root = shared_path("ready", "ml-100k")
    items = pd.read_csv(root / "items.csv", dtype={"item_id": str})
    items = items[items["image"].notna()].sample(n, random_state=7).reset_index(drop=True)
    return root, items


def test_posters_get_labels_and_vectors_and_near_duplicates_are_nearest(home, tmp_path):
    from PIL import Image

    from avrec.encoders.understand import encode_catalog

    root, items = _poster_sample()
    result = encode_catalog(items, ["image"], root=root)
    image = result.results["image"]
    assert image.status == ["ok"] * len(items), result.failures
    assert np.allclose(np.linalg.norm(image.vectors, axis=1), 1.0, atol=1e-4)
    assert image.vectors.shape == (len(items), 1280)
    assert all(
        a["visual_labels"] and all(isinstance(w, str) for w in a["visual_labels"])
        for a in image.attributes
    )
    # a visually similar poster (the same one re-cropped, shrunk and JPEG-recompressed) is nearer
    # to its original than any other poster is
    copies = tmp_path / "copies"
    copies.mkdir()
    rows = []
    for item in items.itertuples():
        with Image.open(root / item.image) as img:
            w, h = img.size
            img.convert("RGB").crop((w // 12, h // 12, w - w // 12, h - h // 12)).resize(
                (w * 2 // 3, h * 2 // 3)
            ).save(copies / f"{item.item_id}.jpg", quality=60)
        rows.append({"item_id": f"copy-{item.item_id}", "image": f"{item.item_id}.jpg"})
    copy_vecs = encode_catalog(pd.DataFrame(rows), ["image"], root=copies).vectors("image")
    sims = copy_vecs @ image.vectors.T
    hits = (sims.argmax(axis=1) == np.arange(len(items))).mean()
    assert hits >= 0.9, f"only {hits:.0%} of near-duplicates found their original"
    unrelated = sims[~np.eye(len(items), dtype=bool)].mean()
    assert np.diag(sims).mean() > unrelated + 0.3


def test_micro_videos_frames_sound_labels_and_vectors(home):
    from avrec.data.loaders import load_dataset
    from avrec.encoders.understand import encode_catalog

    data = load_dataset(shared_path("ready", "microlens-sample"))
    result = encode_catalog(data, ["video", "audio"])
    video, audio = result.results["video"], result.results["audio"]
    assert video.status == ["ok"] * 3 and audio.status == ["ok"] * 3, result.failures
    for r in range(3):
        v, a = video.attributes[r], audio.attributes[r]
        assert v["frames"] >= 3 and v["visual_labels"]
        assert "ocr_text" in v and ("transcript" in v or "speech_skipped" in v or a["speech"] < 0.3)
        assert a["sound_labels"] and a["source"] == "video"
    assert np.allclose(np.linalg.norm(video.vectors, axis=1), 1.0, atol=1e-4)
    assert np.allclose(np.linalg.norm(audio.vectors, axis=1), 1.0, atol=1e-4)
    # the Chinese admission-notice video has Chinese text on screen, and its speech is not
    # passed off as English
    notice = video.attributes[result.item_ids.index("10040")]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in notice["ocr_text"])
    assert "transcript" not in notice


def test_chinese_title_is_nearer_its_translation_than_unrelated_text(home):
    from avrec.encoders.registry import get_encoder

    pairs = [
        ("让子弹飞", "Let the Bullets Fly"),
        ("霸王别姬", "Farewell My Concubine"),
        (
            "卧虎藏龙：一位武林高手想要退隐江湖",
            "Crouching Tiger: a martial arts master wants to retire",
        ),
        ("一只可爱的小狗在公园里玩球", "A cute puppy plays with a ball in the park"),
    ]
    unrelated = [
        "Quarterly tax filing deadlines for small businesses",
        "How to repair a leaking pipe",
        "Stock market closes lower on inflation fears",
        "Recipe: slow-cooked beef stew",
    ]
    enc = get_encoder("text-multi")
    zh = enc.encode([p[0] for p in pairs])
    en = enc.encode([p[1] for p in pairs])
    other = enc.encode(unrelated)
    for k in range(len(pairs)):
        translation = zh[k] @ en[k]
        assert translation > max(zh[k] @ other.T), pairs[k]
        assert translation > max(zh[k] @ en[j] for j in range(len(pairs)) if j != k), pairs[k]


def test_chinese_catalog_end_to_end_routes_to_multilingual(home):
    from avrec.encoders.understand import encode_catalog

    items = pd.DataFrame(
        {
            "item_id": ["zh", "en", "x"],
            "title": ["霸王别姬", "Farewell My Concubine", "Tax filing for small businesses"],
            "description": [
                "两位京剧演员半个世纪的悲欢离合",
                "Two Peking opera actors over half a century",
                "Deadlines and forms",
            ],
        }
    )
    result = encode_catalog(items, ["text"])
    text = result.results["text"]
    assert text.encoder == "text-multi"
    assert [a["language"] for a in text.attributes] == ["zh", "en", "en"]
    v = text.vectors
    assert v[0] @ v[1] > v[0] @ v[2]


def _synth_music(seconds: float = 4.0) -> np.ndarray:
    """A plucked melody (C major arpeggio) with harmonics and decaying envelopes."""
    out = np.zeros(int(seconds * RATE), np.float32)
    notes = [261.63, 329.63, 392.0, 523.25] * 4
    step = len(out) // len(notes)
    t = np.arange(step * 2) / RATE
    for n, f in enumerate(notes):
        tone = sum(np.sin(2 * np.pi * f * h * t) / h for h in range(1, 6)) * np.exp(-3 * t)
        seg = out[n * step : n * step + len(t)]
        seg += 0.3 * tone[: len(seg)].astype(np.float32)
    return out


def test_speech_is_labelled_speech_and_a_tone_music(home, tmp_path):
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed (scripts/system-deps.sh installs it)")
    from avrec.encoders.media import load_audio
    from avrec.encoders.registry import get_encoder

    wav = tmp_path / "speech.wav"
    sentence = (
        "Good evening. Tonight we talk about the history of jazz and the musicians who made it "
        "famous."
    )
    subprocess.run(["espeak-ng", "-w", str(wav), sentence], check=True)
    enc = get_encoder("audio")
    _, speech = enc.analyse(load_audio(wav))
    _, music = enc.analyse(_synth_music())
    assert enc.labels(speech)[0]["label"] == "Speech"
    music_labels = [x["label"] for x in enc.labels(music)]
    assert "Music" in music_labels and music_labels[0] != "Speech"
    names = enc.names
    assert speech[names.index("Speech")] > speech[names.index("Music")]
    assert music[names.index("Music")] > music[names.index("Speech")]


def test_english_speech_is_transcribed_and_routing_skips_other_languages(home, tmp_path):
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed")
    from avrec.encoders.media import load_audio
    from avrec.encoders.speech import transcribe_english

    wav = tmp_path / "s.wav"
    sentence = (
        "Good evening. Tonight we talk about the history of jazz and the musicians who made it "
        "famous."
    )
    subprocess.run(["espeak-ng", "-w", str(wav), sentence], check=True)
    wave = load_audio(wav)
    tr = transcribe_english(wave)
    assert tr.text and all(
        w in tr.text.lower() for w in ("evening", "history", "jazz", "musicians")
    )
    skipped = transcribe_english(wave, language_hint="zh")
    assert skipped.text is None and "zh" in skipped.skipped


def test_corrupt_media_fail_with_reason_and_the_rest_is_encoded(home, tmp_path):
    from avrec.encoders.understand import encode_catalog

    src = shared_path("ready", "ml-100k", "images")
    shutil.copy(src / "1.jpg", tmp_path / "good.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not a picture")
    (tmp_path / "cut.jpg").write_bytes((src / "2.jpg").read_bytes()[:600])
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500)
    items = pd.DataFrame(
        {
            "item_id": ["good", "empty", "text", "cut", "clip", "escape"],
            "title": ["Toy Story", "Empty", "Text", "Cut", "Clip", "Escape"],
            "image": ["good.jpg", "empty.jpg", "text.jpg", "cut.jpg", None, "../x.jpg"],
            "video": [None, None, None, None, "clip.mp4", None],
        }
    )
    result = encode_catalog(items, ["image", "video", "audio", "text"], root=tmp_path)
    image, video = result.results["image"], result.results["video"]
    assert image.status == ["ok", "failed", "failed", "failed", "missing", "failed"]
    assert "empty" in image.reasons[1] and "not a readable image" in image.reasons[2]
    assert "escapes" in image.reasons[5]
    assert video.status[4] == "failed" and "clip.mp4" in video.reasons[4]
    assert result.results["audio"].status[4] == "failed"
    assert result.results["text"].status == ["ok"] * 6  # text is still read for every item
    assert {(i, m) for i, m, _ in result.failures} == {
        ("empty", "image"),
        ("text", "image"),
        ("cut", "image"),
        ("escape", "image"),
        ("clip", "video"),
        ("clip", "audio"),
    }


WARM_SCRIPT = """
import sys, time
import pandas as pd
from avrec.encoders.understand import encode_catalog
from avrec.encoders.registry import get_encoder
items = pd.read_csv(sys.argv[1] + "/items.csv", dtype={"item_id": str})
t = time.perf_counter()
result = encode_catalog(items, ["text", "image"], root=sys.argv[1])
heavy = [m for m in ("torch", "onnxruntime", "faster_whisper", "rapidocr_onnxruntime")
         if m in sys.modules]
loaded = [n for n in ("text-en", "text-multi") if get_encoder(n)._model is not None]
print(heavy, loaded, result.results["image"].summary(), round(time.perf_counter() - t, 2))
assert not heavy and not loaded, (heavy, loaded)
"""


def test_cli_encode_describe_and_a_warm_rerun_does_no_model_work(home, tmp_path):
    src = shared_path("ready", "ml-100k")
    _, sample = _poster_sample(12)
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    for rel in sample["image"]:
        shutil.copy(src / rel, data / rel)
    (data / "images" / "broken.jpg").write_text("<html>not found</html>")
    sample = pd.concat(
        [
            sample,
            pd.DataFrame(
                [{"item_id": "broken", "title": "Broken poster", "image": "images/broken.jpg"}]
            ),
        ]
    )
    sample[["item_id", "title", "description", "genres", "image"]].to_csv(
        data / "items.csv", index=False
    )
    pd.DataFrame(
        {
            "user_id": ["u1", "u2"],
            "item_id": [sample["item_id"].iloc[0]] * 2,
            "rating": [5, 1],
            "comment": ["Wonderful, I loved it", "无聊透顶，浪费时间"],
        }
    ).to_csv(data / "interactions.csv", index=False)
    avrec = [str(Path(sys.executable).parent / "avrec")]

    def run(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*avrec, *a], capture_output=True, text=True, timeout=600, check=False
        )

    assert run("ingest", str(data)).returncode == 0
    out = run("encode", "--modalities", "text,image")
    assert out.returncode == 0, out.stderr
    assert "image  ok     12  failed     1" in out.stdout
    assert "failed broken [image]" in out.stderr
    desc = run("describe", "broken")
    assert "[image] failed" in desc.stdout and "not a readable image" in desc.stdout
    first = sample["item_id"].iloc[0]
    desc = run("describe", first, "--json")
    import json

    info = json.loads(desc.stdout)["understanding"]
    assert info["image"]["status"] == "ok" and info["image"]["attributes"]["visual_labels"]
    assert info["text"]["attributes"]["language"] == "en"
    from sqlalchemy import select

    from avrec.storage import tables as t
    from avrec.storage.db import get_engine

    engine = get_engine()
    with engine.connect() as conn:
        scores = dict(
            conn.execute(select(t.interactions.c.user_id, t.interactions.c.sentiment)).all()
        )
        arts = conn.execute(select(t.artifacts.c.name, t.artifacts.c.path)).all()
    assert scores["u1"] > 0.3 and scores["u2"] < -0.3
    assert {a for a, _ in arts} == {"text", "image"} and all(Path(p).exists() for _, p in arts)
    from avrec.encoders.store import load_vectors

    vecs, present = load_vectors(engine, "image", list(sample["item_id"]))
    assert present.sum() == 12 and not present[-1] and vecs.shape[1] == 1280
    warm = subprocess.run(
        [sys.executable, "-c", WARM_SCRIPT, str(data)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert warm.returncode == 0, warm.stdout + warm.stderr
    assert run("describe", "no-such-item").returncode == 2


def _talking_video(path: Path, wave: np.ndarray) -> None:
    """An MP4 (MPEG-4 video + AAC sound, written with PyAV) of a plain picture and ``wave``."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=10)
        vs.width, vs.height, vs.pix_fmt = 160, 120, "yuv420p"
        aus = out.add_stream("aac", rate=RATE)
        aus.layout = "mono"
        for n in range(int(len(wave) / RATE * 10) + 1):
            img = np.zeros((120, 160, 3), np.uint8)
            img[:, :, 0] = (n * 5) % 255
            img[40:80, 40:120] = 255
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        for start in range(0, len(wave), 1024):
            frame = av.AudioFrame.from_ndarray(
                wave[None, start : start + 1024].astype(np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate = RATE
            for p in aus.encode(frame):
                out.mux(p)
        for p in aus.encode():
            out.mux(p)


def test_english_speech_in_a_video_reaches_the_item_text(home, tmp_path):
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed")
    from avrec.encoders.itemtext import item_text
    from avrec.encoders.media import load_audio
    from avrec.encoders.understand import encode_catalog

    wav = tmp_path / "talk.wav"
    sentence = (
        "Good evening. Tonight we talk about the history of jazz and the musicians who made it "
        "famous."
    )
    subprocess.run(["espeak-ng", "-w", str(wav), sentence], check=True)
    _talking_video(tmp_path / "talk.mp4", load_audio(wav))
    items = pd.DataFrame(
        {"item_id": ["talk"], "title": ["A talk about music"], "video": ["talk.mp4"]}
    )
    result = encode_catalog(items, ["video", "audio", "text"], root=tmp_path)
    video, audio, text = (result.results[m] for m in ("video", "audio", "text"))
    assert video.status == audio.status == text.status == ["ok"], result.failures
    assert "jazz" in video.attributes[0]["transcript"].lower()
    assert audio.attributes[0]["sound_labels"][0] == "Speech"
    assert "jazz" in text.attributes[0]["transcript"].lower()
    expected = item_text(
        items.iloc[0].to_dict(),
        ocr=video.attributes[0]["ocr_text"] or None,
        transcript=video.attributes[0]["transcript"],
    )
    assert "Speech: Good evening" in expected
    from avrec.encoders.cache import content_key

    assert text.keys[0] == content_key(expected)  # the vector is of the text with the transcript
    # a later text-only run reads the transcript from the cache, without decoding the video
    again = encode_catalog(items, ["text"], root=tmp_path).results["text"]
    assert again.keys[0] == text.keys[0] and "jazz" in again.attributes[0]["transcript"].lower()
