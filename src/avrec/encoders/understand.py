"""Understanding a catalog: per item and modality a vector and readable attributes, or the reason
it failed. Cached by (encoder, version, content hash): a second run over an unchanged catalog does
no model work; each finished batch is cached at once, so an interrupted run resumes. A broken file
marks that item's modality ``failed`` (with the reason) and the rest goes on.

Order of work, because later steps read earlier ones:
1. ``video`` - frames (~1/s, capped) through EfficientNet-Lite0, mean-pooled; OCR on 3 frames;
   the sound track through YAMNet; English speech transcribed (other languages skipped).
2. ``audio`` - YAMNet on the item's audio file, else its video's sound track.
3. ``image`` - EfficientNet-Lite0 on the poster/thumbnail (+ OCR when ``ocr_images``).
4. ``text``  - the item text (:mod:`avrec.encoders.itemtext`, with OCR text and transcript),
   its language (:mod:`avrec.encoders.language`), vectors from the catalog's text encoder
   (``auto``: MiniLM for English catalogs, multilingual-e5 when any item is Chinese etc.), and
   mood words zero-shot in the multilingual-e5 space (:mod:`avrec.encoders.mood`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avrec.encoders.cache import EmbeddingCache, FileKeys, content_key, file_key
from avrec.encoders.image import visual_words
from avrec.encoders.media import MediaError, load_image
from avrec.encoders.mood import MoodStats

MODALITIES = ("text", "image", "audio", "video")
DIMS = {"image": 1280, "video": 1280, "audio": 1024}
VERSIONS = {
    "image": "efficientnet-lite0-onnx",
    "audio": "yamnet-w8a8-1",
    "video": "efficientnet-lite0-onnx+ocr+yamnet+whisper-tiny.en-1",
}
ENCODER_OF = {"image": "image", "audio": "audio", "video": "image"}
IMAGE_BATCH = 32


@dataclass
class ModalityResult:
    modality: str
    encoder: str
    version: str
    vectors: np.ndarray
    status: list[str]  # ok | failed | missing, per item
    reasons: list[str | None]
    attributes: list[dict | None]
    keys: list[str | None] = field(default_factory=list)

    @classmethod
    def empty(cls, modality: str, encoder: str, version: str, n: int, dim: int) -> ModalityResult:
        return cls(
            modality,
            encoder,
            version,
            np.zeros((n, dim), np.float32),
            ["missing"] * n,
            [None] * n,
            [None] * n,
            [None] * n,
        )

    @property
    def present(self) -> np.ndarray:
        return np.array([s == "ok" for s in self.status], dtype=bool)

    def ok(self, r: int, vector: np.ndarray, attrs: dict | None, key: str | None) -> None:
        self.vectors[r], self.attributes[r], self.keys[r], self.status[r] = vector, attrs, key, "ok"

    def fail(self, r: int, reason: str) -> None:
        self.status[r], self.reasons[r] = "failed", reason

    def summary(self) -> dict[str, int]:
        return {s: self.status.count(s) for s in ("ok", "failed", "missing")}


@dataclass
class CatalogUnderstanding:
    """What :func:`encode_catalog` returns: rows aligned with the catalog's items."""

    item_ids: list[str]
    results: dict[str, ModalityResult]

    def vectors(self, modality: str) -> np.ndarray:
        return self.results[modality].vectors

    def present(self, modality: str) -> np.ndarray:
        return self.results[modality].present

    def attributes(self, item_id: str) -> dict[str, dict | None]:
        r = self.item_ids.index(item_id)
        return {m: res.attributes[r] for m, res in self.results.items()}

    @property
    def failures(self) -> list[tuple[str, str, str]]:
        """(item_id, modality, reason) for every failed modality."""
        return [
            (self.item_ids[r], m, res.reasons[r] or "")
            for m, res in self.results.items()
            for r, s in enumerate(res.status)
            if s == "failed"
        ]


def _bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="item", disable=not enabled, leave=False)


def _resolve(row: dict, column: str, root: Path | None) -> tuple[Path | None, str | None]:
    """(path, None) for a usable media file, (None, reason) for a broken reference,
    (None, None) when the item has no such media."""
    from avrec.data.validation import media_problem

    rel = row.get(column)
    if not rel:
        return None, None
    if root is None:
        return None, f"{column} {rel!r}: no dataset folder known for its media paths (use --root)"
    problem = media_problem(Path(root).resolve(), str(rel))
    if problem:
        return None, problem
    path = (Path(root) / str(rel)).resolve()
    if path.stat().st_size == 0:
        return None, f"media file {rel!r} is empty (0 bytes)"
    return path, None


def understand_videos(
    rows: list[dict],
    root: Path | None,
    language: list[str | None],
    audio_cache: EmbeddingCache,
    progress: bool = False,
    keys: FileKeys | None = None,
) -> ModalityResult:
    from avrec.encoders.video import analyse_video

    out = ModalityResult.empty("video", "image", VERSIONS["video"], len(rows), DIMS["video"])
    cache = EmbeddingCache(f"video@{VERSIONS['video']}")
    with _bar(len(rows), "video", progress) as bar:
        for r, row in enumerate(rows):
            bar.update(1)
            path, problem = _resolve(row, "video", root)
            if problem:
                out.fail(r, problem)
            if path is None:
                continue
            key = (keys or file_key)(path)
            cached = cache.get(key)
            if cached is not None:
                out.ok(r, cached, cache.get_attrs(key), key)
                continue
            try:
                res = analyse_video(path, language=language[r])
            except MediaError as exc:
                out.fail(r, str(exc))
                continue
            except Exception as exc:
                out.fail(r, f"{path.name}: {type(exc).__name__}: {exc}")
                continue
            if res.audio_vector is not None:
                audio_cache.put_many(
                    [key],
                    res.audio_vector[None],
                    [{**(res.audio_attributes or {}), "source": "video"}],
                )
            cache.put_many([key], res.vector[None], [res.attributes])
            out.ok(r, res.vector, res.attributes, key)
    return out


def cached_video_attributes(rows: list[dict], root: Path | None) -> ModalityResult:
    """The videos' on-screen text and transcripts already in the cache, as the attributes
    :func:`understand_text` reads (:func:`cached_media`: nothing is decoded or run)."""
    out = ModalityResult.empty("video", "image", VERSIONS["video"], len(rows), 0)
    texts = cached_media(pd.DataFrame(rows), root, ("video",)).texts
    for r in range(len(rows)):
        out.attributes[r] = {k: v[r] for k, v in texts.items() if v[r]} or None
    return out


def understand_audio(
    rows: list[dict],
    root: Path | None,
    cache: EmbeddingCache,
    progress: bool = False,
    keys: FileKeys | None = None,
) -> ModalityResult:
    from avrec.encoders.video import sound_track

    out = ModalityResult.empty("audio", "audio", VERSIONS["audio"], len(rows), DIMS["audio"])
    with _bar(len(rows), "audio", progress) as bar:
        for r, row in enumerate(rows):
            bar.update(1)
            column = "audio" if row.get("audio") else "video"
            path, problem = _resolve(row, column, root)
            if problem:
                out.fail(r, problem)
            if path is None:
                continue
            key = (keys or file_key)(path)
            cached = cache.get(key)
            if cached is not None:
                out.ok(r, cached, cache.get_attrs(key), key)
                continue
            try:
                _, vec, attrs = sound_track(path)
            except MediaError as exc:
                out.fail(r, str(exc))
                continue
            except Exception as exc:
                out.fail(r, f"{path.name}: {type(exc).__name__}: {exc}")
                continue
            attrs["source"] = column
            cache.put_many([key], vec[None], [attrs])
            out.ok(r, vec, attrs, key)
    return out


def understand_images(
    rows: list[dict],
    root: Path | None,
    ocr: bool = False,
    progress: bool = False,
    keys: FileKeys | None = None,
) -> ModalityResult:
    from avrec.encoders.registry import get_encoder

    version = VERSIONS["image"] + ("+ocr" if ocr else "")
    out = ModalityResult.empty("image", "image", version, len(rows), DIMS["image"])
    cache = EmbeddingCache(f"image@{version}")
    todo: list[tuple[int, str, Path]] = []
    for r, row in enumerate(rows):
        path, problem = _resolve(row, "image", root)
        if problem:
            out.fail(r, problem)
        if path is None:
            continue
        key = (keys or file_key)(path)
        cached = cache.get(key)
        if cached is not None:
            out.ok(r, cached, cache.get_attrs(key), key)
        else:
            todo.append((r, key, path))
    with _bar(len(todo), "image", progress) as bar:
        for start in range(0, len(todo), IMAGE_BATCH):
            loaded = []
            for r, key, path in todo[start : start + IMAGE_BATCH]:
                try:
                    loaded.append((r, key, load_image(path)))
                except MediaError as exc:
                    out.fail(r, str(exc))
                except Exception as exc:
                    out.fail(r, f"{path.name}: not a usable image ({type(exc).__name__}: {exc})")
            bar.update(len(todo[start : start + IMAGE_BATCH]))
            if not loaded:
                continue
            enc = get_encoder("image")
            vecs, probs = enc.analyse([img for _, _, img in loaded])
            attrs: list[dict[str, Any]] = [
                {"visual_labels": visual_words(enc.labels(p))} for p in probs
            ]
            if ocr:
                from avrec.encoders.ocr import ocr_text

                for a, (_, _, img) in zip(attrs, loaded, strict=True):
                    a["ocr_text"] = ocr_text([img])
            cache.put_many([k for _, k, _ in loaded], vecs, attrs)
            for (r, key, _), vec, a in zip(loaded, vecs, attrs, strict=True):
                out.ok(r, vec, a, key)
    return out


def _extra_text(r: int, results: dict[str, ModalityResult], key: str) -> str | None:
    parts = [
        (res.attributes[r] or {}).get(key) for m, res in results.items() if m in ("video", "image")
    ]
    return " / ".join(p for p in parts if p) or None


def understand_text(
    rows: list[dict],
    results: dict[str, ModalityResult],
    text_encoder: str = "auto",
    moods: bool = True,
    progress: bool = False,
    mood_stats: MoodStats | None = None,
) -> ModalityResult:
    """Text vectors, language, moods and genres per item. Moods are standardised by
    ``mood_stats`` (the whole catalog's, when this is one chunk of it), else by
    :func:`catalog_mood_stats` of ``rows``."""
    from avrec.encoders.itemtext import item_text
    from avrec.encoders.language import choose_text_encoder, detect_language
    from avrec.encoders.mood import mood_words
    from avrec.encoders.pipeline import encode_cached
    from avrec.encoders.registry import get_encoder

    texts = [
        item_text(
            row,
            ocr=_extra_text(r, results, "ocr_text"),
            transcript=_extra_text(r, results, "transcript"),
        )
        for r, row in enumerate(rows)
    ]
    present = [bool(t.strip()) for t in texts]
    # the item's language from its own fields; routing also looks at OCR text and transcripts
    langs = [
        row.get("language")
        or detect_language(f"{row.get('title') or ''} {row.get('description') or ''}")
        or detect_language(t)
        for row, t in zip(rows, texts, strict=True)
    ]
    routed = [detect_language(t) for t in texts]
    name = choose_text_encoder(
        [lang for lang, p in zip(langs + routed, present + present, strict=True) if p], text_encoder
    )
    enc = get_encoder(name)
    out = ModalityResult.empty("text", name, enc.version, len(rows), enc.dim)
    idx = [r for r, p in enumerate(present) if p]
    vecs = encode_cached([texts[r] for r in idx], name, progress=progress)
    if name == "text-multi" or not moods:
        multi = vecs
    else:  # moods read the story, not the cast list: tags are left out (a quarter less e5 work)
        mood_texts = [
            item_text(
                {**rows[r], "tags": None},
                ocr=_extra_text(r, results, "ocr_text"),
                transcript=_extra_text(r, results, "transcript"),
            )
            or texts[r]
            for r in idx
        ]
        multi = encode_cached(mood_texts, "text-multi", progress=progress)
    if moods and len(idx):
        stats = mood_stats or catalog_mood_stats(rows, name, progress)
        words = mood_words(multi, stats=stats)
    else:
        words = [[] for _ in idx]

    for n, r in enumerate(idx):
        genres = [g for g in str(rows[r].get("genres") or "").split("|") if g.strip()]
        attrs = {"language": langs[r], "moods": words[n], "genres": genres}
        for key in ("ocr_text", "transcript"):
            if value := _extra_text(r, results, key):
                attrs[key] = value
        out.ok(r, vecs[n], attrs, content_key(texts[r]))
    return out


def catalog_mood_stats(rows: list[dict], text_encoder: str, progress: bool = False) -> MoodStats:
    """Each mood's standardisation over the catalog ``rows`` (a seeded sample of
    ``MOOD_SAMPLE`` above it), from the texts moods read (without OCR text or transcripts, so it
    can be settled before any media is analysed): the same for every chunk of a catalog."""
    from avrec.encoders.itemtext import item_text
    from avrec.encoders.mood import mood_sample
    from avrec.encoders.mood import mood_stats as stats_of
    from avrec.encoders.pipeline import encode_cached

    if text_encoder == "text-multi":
        texts = [item_text(row) for row in rows]
    else:
        texts = [item_text({**row, "tags": None}) or item_text(row) for row in rows]
    texts = [t for t in texts if t.strip()]
    sample = [texts[i] for i in mood_sample(len(texts))]
    if not sample:
        return stats_of(np.zeros((0, 1), np.float32))
    return stats_of(encode_cached(sample, "text-multi", progress=progress))


def encode_catalog(
    data,
    modalities: Sequence[str] = MODALITIES,
    root: Path | None = None,
    progress: bool = False,
    text_encoder: str = "auto",
    ocr_images: bool = False,
    moods: bool = True,
    mood_stats: MoodStats | None = None,
) -> CatalogUnderstanding:
    """Understand every item of ``data`` (a :class:`~avrec.data.dataset.Dataset` or an items
    frame; media paths are relative to ``root``, by default the dataset's own folder)."""
    items: pd.DataFrame = data if isinstance(data, pd.DataFrame) else data.items
    root = root if root is not None or isinstance(data, pd.DataFrame) else data.root
    bad = [m for m in modalities if m not in MODALITIES]
    if bad:
        raise ValueError(f"unknown modality {bad[0]!r}; choose from {', '.join(MODALITIES)}")
    rows = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in items.to_dict("records")
    ]
    from avrec.encoders.language import detect_language

    hint = [
        row.get("language")
        or detect_language(f"{row.get('title') or ''} {row.get('description') or ''}")
        for row in rows
    ]
    audio_cache = EmbeddingCache(f"audio@{VERSIONS['audio']}")
    results: dict[str, ModalityResult] = {}
    with FileKeys() as keys:
        if "video" in modalities:
            results["video"] = understand_videos(rows, root, hint, audio_cache, progress, keys)
        if "audio" in modalities:
            results["audio"] = understand_audio(rows, root, audio_cache, progress, keys)
        if "image" in modalities:
            results["image"] = understand_images(rows, root, ocr_images, progress, keys)
    if "text" in modalities:
        extras = dict(results)
        if "video" not in extras:  # OCR text and transcripts of earlier runs, without model work
            extras["video"] = cached_video_attributes(rows, root)
        results["text"] = understand_text(
            rows, extras, text_encoder, moods, progress, mood_stats=mood_stats
        )
    ordered = {m: results[m] for m in MODALITIES if m in results}
    return CatalogUnderstanding([str(r["item_id"]) for r in rows], ordered)


def understand_catalog(
    items: pd.DataFrame,
    root: Path | None,
    modalities: Sequence[str] = MODALITIES,
    progress: bool = False,
    **kw,
) -> dict[str, ModalityResult]:
    """The per-modality results only (see :func:`encode_catalog`)."""
    return encode_catalog(items, modalities, root, progress, **kw).results


#: where each media modality's cached vectors come from: (item column, cache keys) in order
_CACHED_FROM = {
    "image": (("image",), (f"image@{VERSIONS['image']}", f"image@{VERSIONS['image']}+ocr")),
    "video": (("video",), (f"video@{VERSIONS['video']}",)),
    "audio": (("audio", "video"), (f"audio@{VERSIONS['audio']}",)),
}


@dataclass
class CachedMedia:
    """What :func:`cached_media` finds, aligned with the catalog's items."""

    #: ``{modality: [n_items, dim]}`` for the modalities some item has cached (zero rows: none)
    vectors: dict[str, np.ndarray]
    #: per modality, how many items name a readable media file whose vectors are not cached
    missing: dict[str, int]
    #: ``{"ocr_text": [...], "transcript": [...]}`` from the cached video analyses (None: none)
    texts: dict[str, list[str | None]]


def cached_media(
    items: pd.DataFrame, root: Path | None, modalities: Sequence[str] = ("image", "video", "audio")
) -> CachedMedia:
    """The image, video and audio vectors, and the videos' on-screen text and transcripts,
    that earlier runs (``avrec encode``, :func:`encode_catalog`) left in the cache, found by
    each file's content hash, without any model work. An item's audio is its audio file, else
    its video's sound track, as :func:`understand_audio` reads it. Only ``modalities`` are
    looked up (the texts come with ``video``)."""
    rows = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in items.to_dict("records")
    ]
    with FileKeys() as keys:
        return _cached_media(rows, root, modalities, keys)


def _cached_media(
    rows: list[dict], root: Path | None, modalities: Sequence[str], keys: FileKeys
) -> CachedMedia:
    found = CachedMedia({}, {}, {"ocr_text": [None] * len(rows), "transcript": [None] * len(rows)})
    for modality, (columns, cache_keys) in _CACHED_FROM.items():
        if modality not in modalities or not any(row.get(col) for row in rows for col in columns):
            continue
        caches = [c for c in (EmbeddingCache(k) for k in cache_keys) if len(c)]
        out = np.zeros((len(rows), DIMS[modality]), np.float32)
        has, absent = np.zeros(len(rows), bool), 0
        for r, row in enumerate(rows):
            column = next((col for col in columns if row.get(col)), None)
            path, _ = _resolve(row, column, root) if column else (None, None)
            if path is None:
                continue
            if not caches:  # nothing of this kind was ever encoded here: no file is read
                absent += 1
                continue
            key = keys(path)
            cache = next((c for c in caches if key in c), None)
            if cache is None:
                absent += 1
                continue
            out[r], has[r] = cache.get(key), True
            if modality == "video":
                for name, values in found.texts.items():
                    values[r] = (cache.get_attrs(key) or {}).get(name) or None
        if has.any():
            found.vectors[modality] = out
        if absent:
            found.missing[modality] = absent
    return found
