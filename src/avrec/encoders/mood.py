"""Mood and sentiment, zero-shot in the multilingual text space (multilingual-e5): a text is
compared with short descriptions of each mood (or of positive/negative opinions), in any
language e5 reads."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from avrec.encoders.language import detect_language  # noqa: F401 (re-exported)

MOODS = {
    "calm": "calm, peaceful and relaxing",
    "happy": "happy, cheerful and uplifting",
    "funny": "funny and humorous comedy",
    "romantic": "romantic love story",
    "sad": "sad, melancholic and tragic",
    "tense": "tense, suspenseful thriller",
    "dark": "dark, violent and disturbing",
    "scary": "scary horror",
    "exciting": "exciting, action-packed adventure",
    "inspiring": "inspiring and heartwarming",
}
#: several phrasings per side (English and Chinese); a text's score against a side is its best match
SENTIMENT = {
    "positive": [
        "I loved it, it was wonderful and I recommend it",
        "excellent, great, amazing, a masterpiece",
        "我非常喜欢，太好看了，强烈推荐",
    ],
    "negative": [
        "I hated it, it was terrible and boring",
        "awful, bad, a waste of time",
        "太难看了，很失望，浪费时间",
    ],
    "neutral": ["it was okay, average, nothing special"],
}
SENTIMENT_TEMPERATURE = 0.02


@lru_cache(maxsize=4)
def _anchors(kind: str) -> tuple[list[str], np.ndarray]:
    from avrec.encoders.pipeline import encode_queries_cached

    if kind == "mood":
        return list(MOODS), encode_queries_cached(list(MOODS.values()), "text-multi")
    names = [side for side, phrases in SENTIMENT.items() for _ in phrases]
    return names, encode_queries_cached([p for ps in SENTIMENT.values() for p in ps], "text-multi")


#: how many of the catalog's texts set each mood's standardisation (a seeded sample above it)
MOOD_SAMPLE = 5_000
#: (mean, std) per mood, in the order of ``MOODS``
MoodStats = tuple[tuple[float, ...], tuple[float, ...]]


def mood_stats(passage_vectors: np.ndarray, min_catalog: int = 50) -> MoodStats:
    """Each mood's mean and standard deviation of similarity over ``passage_vectors`` (the
    catalog's texts, or a sample of them); ``REFERENCE_STATS`` below ``min_catalog`` texts.
    e5 similarities sit in a narrow band and each mood description has its own bias, so a mood
    is judged against its usual similarity."""
    names, anchors = _anchors("mood")
    if len(passage_vectors) < min_catalog:
        mean, std = (np.array([REFERENCE_STATS[m][k] for m in names]) for k in (0, 1))
    else:
        sims = np.asarray(passage_vectors, dtype=np.float32) @ anchors.T
        mean, std = sims.mean(axis=0), sims.std(axis=0) + 1e-6
    return tuple(float(x) for x in mean), tuple(float(x) for x in std)


def mood_sample(n: int, seed: int = 0) -> np.ndarray:
    """Which of ``n`` texts set the standardisation: all up to ``MOOD_SAMPLE``, else a seeded
    sample (sorted), so every chunk of a catalog is judged by the same statistics."""
    if n <= MOOD_SAMPLE:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, MOOD_SAMPLE, replace=False))


def mood_words(
    passage_vectors: np.ndarray, top: int = 2, min_z: float = 0.5, stats: MoodStats | None = None
) -> list[list[str]]:
    """Up to ``top`` moods per item whose similarity stands ``min_z`` standard deviations above
    that mood's usual similarity: ``stats`` (from :func:`mood_stats` over the whole catalog),
    else the statistics of ``passage_vectors`` themselves."""
    names, anchors = _anchors("mood")
    sims = np.asarray(passage_vectors, dtype=np.float32) @ anchors.T
    mean, std = (np.asarray(x) for x in (stats or mood_stats(passage_vectors)))
    z = (sims - mean) / std
    out = []
    for row in z:
        order = np.argsort(-row)[:top]
        out.append([names[i] for i in order if row[i] >= min_z])
    return out


#: (mean, std) of each mood's similarity over the first 200 ml-100k item texts (title, genres,
#: cast, plot) in multilingual-e5-small: the standardisation used for catalogs too small to
#: supply their own.
REFERENCE_STATS = {
    "calm": (0.7419, 0.0123),
    "happy": (0.7389, 0.0124),
    "funny": (0.7788, 0.0148),
    "romantic": (0.7808, 0.0161),
    "sad": (0.7707, 0.0113),
    "tense": (0.7768, 0.0135),
    "dark": (0.7680, 0.0143),
    "scary": (0.7818, 0.0148),
    "exciting": (0.7579, 0.0147),
    "inspiring": (0.7558, 0.0123),
}


def sentiment(texts: Sequence[str]) -> np.ndarray:
    """Sentiment in [-1, 1] of comments or reviews, any language e5 reads: P(positive) -
    P(negative) from a softmax over the best similarity to positive, negative and neutral
    phrasings (so "it was ok" lands near 0)."""
    from avrec.encoders.pipeline import encode_texts_cached

    if not len(texts):
        return np.zeros(0, np.float32)
    names, anchors = _anchors("sentiment")
    sims = encode_texts_cached([str(t) for t in texts], "text-multi") @ anchors.T
    sides = np.asarray(names)
    best = np.stack([sims[:, sides == side].max(axis=1) for side in SENTIMENT], axis=1)
    z = np.exp((best - best.max(axis=1, keepdims=True)) / SENTIMENT_TEMPERATURE)
    p = z / z.sum(axis=1, keepdims=True)
    return (p[:, 0] - p[:, 1]).astype(np.float32)
