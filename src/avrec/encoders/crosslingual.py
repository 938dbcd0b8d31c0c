"""Language-neutral request vectors for the multilingual text encoder.

multilingual-e5 places a text partly by *what* it says and partly by *which language* says it:
a Chinese request lands nearer to everything Chinese-flavoured in an English catalog than to the
items it asks for ("太空冒险电影", space adventure film, ranked Chinese dramas first). Removing
each language's mean direction (Libovický et al., 2020, "On the language neutrality of
pre-trained multilingual representations") fixes much of that: a request in language L is
mapped to ``normalise(v - (mean_L - mean_en))``, the means taken over the parallel requests
in ``parallel_requests.json`` beside this module (50 short film requests of our own, written in
English and in each language). Requests in English, or in a language without parallel
requests, are left as they are; the language is
:func:`avrec.encoders.language.detect_language`'s, reading texts as requests (fastText's
language identifier among the request languages).
docs/benchmarks.md "requests across languages" measures it on held-out pairs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from importlib.resources import files

import numpy as np

from avrec.encoders.language import detect_language

_PARALLEL = json.loads(
    files("avrec.encoders").joinpath("parallel_requests.json").read_text("utf-8")
)
#: the short film requests in English; :data:`TRANSLATIONS` holds them in other languages, in order
REQUESTS_EN: list[str] = _PARALLEL["en"]
TRANSLATIONS: dict[str, list[str]] = {
    lang: texts for lang, texts in _PARALLEL.items() if lang != "en"
}


def pairs(lang: str) -> list[tuple[str, str]]:
    """(English, ``lang``) parallel requests."""
    return list(zip(REQUESTS_EN, TRANSLATIONS[lang], strict=True))


def language_offsets(
    encode: Callable[[Sequence[str]], np.ndarray],
    languages: Sequence[str] | None = None,
    parallel: dict[str, list[tuple[str, str]]] | None = None,
) -> dict[str, np.ndarray]:
    """Per language, ``mean_L - mean_en`` of ``encode`` (raw request vectors) over the
    parallel requests (``parallel``, by default :data:`TRANSLATIONS` for ``languages``, all
    of them when None)."""
    if parallel is None:
        parallel = {lang: pairs(lang) for lang in (languages or TRANSLATIONS)}
    out = {}
    for lang, both in parallel.items():
        en = np.asarray(encode([e for e, _ in both]), np.float32)
        other = np.asarray(encode([o for _, o in both]), np.float32)
        out[lang] = (other.mean(axis=0) - en.mean(axis=0)).astype(np.float32)
    return out


def request_languages(texts: Sequence[str]) -> list[str]:
    """Each request's language (``detect_language(text, short=True)``, English when unknown)."""
    return [detect_language(t, short=True) or "en" for t in texts]


def offset_languages(texts: Sequence[str], languages: Sequence[str] | None = None) -> set[str]:
    """The languages of ``texts`` (or the already read ``languages``) that have parallel
    requests (so an offset)."""
    return {lang for lang in (languages or request_languages(texts)) if lang in TRANSLATIONS}


def neutralise(
    vectors: np.ndarray,
    texts: Sequence[str],
    offsets: dict[str, np.ndarray],
    languages: Sequence[str] | None = None,
) -> np.ndarray:
    """``vectors`` (L2-normalised, one per text) with each text's language offset removed and
    renormalised; texts in English or in a language without an offset are unchanged.
    ``languages``: the texts' :func:`request_languages`, when already read."""
    out = np.array(vectors, dtype=np.float32, copy=True)
    for n, lang in enumerate(languages or request_languages(texts)):
        offset = offsets.get(lang)
        if offset is not None:
            v = out[n] - offset
            out[n] = v / max(float(np.linalg.norm(v)), 1e-12)
    return out
