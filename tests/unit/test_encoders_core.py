"""Encoders without the models: audio front end, language routing, item text, cache, media
errors."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from avrec.encoders import audio
from avrec.encoders.cache import EmbeddingCache, content_key, file_key
from avrec.encoders.itemtext import item_text
from avrec.encoders.language import choose_text_encoder, detect_language


def test_mel_matrix_matches_yamnet_layout():
    mel = audio.mel_matrix()
    assert mel.shape == (257, 64)
    freqs = np.linspace(0, 8000, 257)
    assert not mel[freqs < 125].any() and not mel[freqs > 7500].any()
    assert (mel.sum(axis=0) > 0).all()  # every band sees some bins
    centers = (mel * freqs[:, None]).sum(0) / mel.sum(0)
    assert (np.diff(centers) > 0).all()  # bands ordered low to high


def test_log_mel_and_patches_of_a_tone():
    t = np.arange(3 * audio.RATE) / audio.RATE
    wave = 0.5 * np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    mel = audio.log_mel(wave)
    assert mel.shape == (1 + (len(wave) - 400) // 160, 64)
    freqs = np.linspace(0, 8000, 257)
    m = audio.mel_matrix()
    band_of_1k = int(np.argmax(m[np.argmin(abs(freqs - 1000))]))
    assert abs(int(np.argmax(mel.mean(0))) - band_of_1k) <= 1
    assert audio.patches(wave).shape == (5, 96, 64)
    assert audio.patches(wave[:100]).shape == (1, 96, 64)  # short clips pad to one patch


@pytest.mark.parametrize(
    "text,lang",
    [
        ("Toy Story (1995). A cowboy doll is threatened by a new toy", "en"),
        ("让子弹飞。土匪张麻子劫了县长的火车", "zh"),
        ("千と千尋の神隠し", "ja"),
        ("기생충", "ko"),
        ("Брат", "ru"),
        ("La vida es bella. Un hombre y su hijo en un campo con la esperanza de vivir", "es"),
        # Latin-script languages without function-word lists, read by fastText
        ("Een man en zijn zoon reizen door het hele land op zoek naar een nieuw huis", "nl"),
        ("Mężczyzna i jego syn podróżują przez cały kraj w poszukiwaniu nowego domu", "pl"),
        ("Bir adam ve oğlu yeni bir ev bulmak için bütün ülkeyi dolaşır", "tr"),  # noqa: RUF001  # real Turkish: the dotless i is data
        ("", None),
        (None, None),
        ("12345 !!!", None),
    ],
)
def test_detect_language(text, lang):
    assert detect_language(text) == lang


@pytest.mark.parametrize(
    "text,short_lang",
    [
        ("ein Film über einen Hund", "de"),
        ("una película sobre dinosaurios", "es"),
        ("un film sur des soldats", "fr"),
        # no function word to go on: fastText reads them
        ("una storia d'amore triste", "it"),
        ("commedia da vedere in famiglia", "it"),
        ("documentário sobre a natureza", "pt"),
        ("Animationsfilm für Kinder", "de"),
        ("una comedia sobre una boda", "es"),
        ("comédie romantique", "fr"),
        # English requests naming foreign-looking titles stay English
        ("Die Hard", "en"),
        ("something like Die Hard", "en"),
        ("a film about the sea", "en"),
        ("space adventure film", "en"),
        ("Das Boot", "en"),
        ("La La Land", "en"),
        ("a movie like Amelie", "en"),
        ("scary movies", "en"),
        ("relaxing classical music", "en"),
    ],
)
def test_detect_language_of_short_requests(text, short_lang):
    assert detect_language(text, short=True) == short_lang
    assert detect_language(text) == "en"  # catalogs' routing reads under six words as English


def test_routing_picks_multilingual_for_any_non_english_item():
    assert choose_text_encoder(["en", None, "en"]) == "text-en"
    assert choose_text_encoder(["en", "zh"]) == "text-multi"
    assert choose_text_encoder(["en"] * 500 + ["zh"]) == "text-multi"  # any Chinese item
    assert choose_text_encoder(["en"] * 500 + ["fr"]) == "text-en"  # one French title
    assert choose_text_encoder(["en"] * 10 + ["fr"] * 2) == "text-multi"
    assert choose_text_encoder(["zh"], requested="text-en") == "text-en"


def test_a_dutch_catalog_routes_to_the_multilingual_encoder():
    """Latin-script languages beyond the five with function-word lists are read too, so a Dutch
    catalog is not handed to the English-only MiniLM."""
    dutch = [
        "Een jonge vrouw verhuist naar Amsterdam en begint daar een nieuw leven als schilder.",
        "Twee broers proberen de boerderij van hun vader te redden na een zware winter.",
        "Een detective onderzoekt een reeks mysterieuze verdwijningen in een klein dorp aan zee.",
        "Een oude muzikant vindt na veertig jaar zijn verloren liefde terug in Rotterdam.",
    ]
    english = ["A young woman moves to London and starts a new life as a painter in the city."] * 20
    langs = [detect_language(t) for t in dutch + english]
    assert langs[:4] == ["nl"] * 4 and set(langs[4:]) == {"en"}
    assert choose_text_encoder(langs) == "text-multi"


def test_item_text_composition():
    row = {
        "title": "Heat",
        "genres": "Crime|Thriller",
        "tags": "director:Michael Mann|heist",
        "description": "A cop hunts a thief.",
        "comments": float("nan"),
    }
    text = item_text(row, ocr="HEAT", transcript="you're gonna get hurt")
    assert text == (
        "Heat. Genres: Crime, Thriller. Tags: director: Michael Mann, heist. A cop hunts a thief. "
        "On screen: HEAT. Speech: you're gonna get hurt"
    )
    assert item_text({"title": None}) == ""


def test_cache_round_trip_attributes_and_torn_shard(tmp_path):
    cache = EmbeddingCache("enc@1", root=tmp_path)
    vecs = np.eye(3, dtype=np.float32)
    cache.put_many(["a", "b"], vecs[:2], [{"labels": ["x"]}, '{"labels": ["y"]}'])
    cache.put_many(["c"], vecs[2:])
    (cache.dir / "torn.npz").write_bytes(b"PK\x03\x04 not a zip")
    again = EmbeddingCache("enc@1", root=tmp_path)
    assert len(again) == 3 and not (cache.dir / "torn.npz").exists()
    assert np.array_equal(again.get("b"), vecs[1])
    assert again.get_attrs("a") == {"labels": ["x"]} and again.get_attrs("c") is None
    assert "zzz" not in again and again.get("zzz") is None


def test_cache_compacts_many_shards(tmp_path, monkeypatch):
    monkeypatch.setattr("avrec.encoders.cache.MAX_SHARDS", 3)
    cache = EmbeddingCache("enc@1", root=tmp_path)
    for n in range(5):
        cache.put_many([f"k{n}"], np.full((1, 2), n, np.float32), [{"n": n}])
    again = EmbeddingCache("enc@1", root=tmp_path)
    assert len(list(again.dir.glob("*.npz"))) == 1
    assert EmbeddingCache("enc@1", root=tmp_path).get_attrs("k4") == {"n": 4}


def test_content_and_file_keys(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"hello")
    assert file_key(f) == content_key(b"hello") == content_key("hello")


def test_broken_media_raise_clear_errors(tmp_path):
    from avrec.encoders.media import MediaError, load_audio, load_image, sample_frames

    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video")
    with pytest.raises(MediaError, match="empty"):
        load_image(empty)
    with pytest.raises(MediaError, match="not a readable image"):
        load_image(text)
    with pytest.raises(MediaError, match=r"notes\.mp4"):
        sample_frames(text)
    with pytest.raises(MediaError, match=r"notes\.mp4"):
        load_audio(text)
    with pytest.raises(MediaError, match="does not exist"):
        load_image(tmp_path / "nope.png")


class CountingEncoder:
    """A stand-in text encoder (the real ones are exercised in tests/slow): counts what it encodes
    and can be told to fail part-way, like an interrupted run."""

    name, version, modality, dim = "counting", "1", "text", 3
    key = "counting@1"
    seen: ClassVar[list[str]] = []
    fail_after: int | None = None

    def encode(self, batch):
        if self.fail_after is not None and len(self.seen) >= self.fail_after:
            raise KeyboardInterrupt
        CountingEncoder.seen.extend(batch)
        return np.array([[len(t), 1.0, 0.0] for t in batch], np.float32)


def test_interrupted_encoding_resumes_and_a_rerun_does_no_work(avrec_home, monkeypatch):
    from avrec.encoders import pipeline

    monkeypatch.setattr(pipeline, "get_encoder", lambda name: CountingEncoder())
    texts = [f"text number {n}" for n in range(10)]
    CountingEncoder.seen, CountingEncoder.fail_after = [], 4
    with pytest.raises(KeyboardInterrupt):
        pipeline.encode_cached(texts, "counting", batch_size=2)
    assert len(CountingEncoder.seen) == 4  # two batches finished and were cached
    CountingEncoder.seen, CountingEncoder.fail_after = [], None
    out = pipeline.encode_cached(texts, "counting", batch_size=2)
    assert CountingEncoder.seen == texts[4:]  # only the rest was encoded
    assert out[:, 0].tolist() == [len(t) for t in texts]
    CountingEncoder.seen = []
    pipeline.encode_cached(texts + texts[:3], "counting", batch_size=2)
    assert CountingEncoder.seen == []  # unchanged content: no model work
