"""Language of an item's text, by script and (for Latin script) function words, and the routing
rule that picks the catalog's text encoder.

Codes: ``zh`` (Han ideographs without kana), ``ja`` (kana), ``ko`` (Hangul), ``ru`` (Cyrillic),
``ar``, ``he``, ``el``, ``th``, ``hi`` (Devanagari); Latin script is ``en`` unless the common
function words of ``es``/``fr``/``de``/``it``/``pt`` clearly outnumber the English ones. ``None``
when there is nothing to go on. Simple and deterministic: enough to route text between the
English-only and the multilingual encoder, which is all it is used for.
"""

from __future__ import annotations

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
FUNCTION_WORDS = {
    "en": ["the", "and", "of", "to", "a", "in", "is", "that", "it", "for", "with", "as", "was", "on", "his", "her", "by", "from", "are", "this", "be", "an", "who"],
    "es": ["el", "la", "los", "las", "de", "que", "y", "en", "un", "una", "por", "con", "para", "es", "del", "se", "su", "al", "lo", "como"],
    "fr": ["le", "la", "les", "de", "des", "et", "en", "un", "une", "du", "que", "est", "pour", "dans", "qui", "sur", "au", "avec", "par", "ce", "il"],
    "de": ["der", "die", "das", "und", "ist", "ein", "eine", "den", "dem", "des", "nicht", "zu", "mit", "von", "sich", "auf", "für", "im"],
    "it": ["il", "lo", "la", "gli", "le", "di", "che", "e", "un", "una", "per", "con", "del", "della", "non", "sono", "nel", "al"],
    "pt": ["o", "a", "os", "as", "de", "que", "e", "em", "um", "uma", "do", "da", "para", "com", "não", "por", "no", "na", "dos"],
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


def _latin_language(text: str, short: bool = False) -> str:
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 6 and not short:
        return "en"
    hits = {lang: sum(w in vocab for w in words) for lang, vocab in
            ((k, set(v)) for k, v in FUNCTION_WORDS.items())}
    best = max(hits, key=hits.get)
    if len(words) < 6:  # a short text: no English function word, and two of the language's
        # or one and an accented letter ("Die Hard" stays English, "un film sur un chien" not)
        accented = any(not c.isascii() for c in text)
        enough = hits[best] >= 2 or (hits[best] >= 1 and accented)
        return best if best != "en" and enough and hits["en"] == 0 else "en"
    return best if best != "en" and hits[best] >= max(2, 1.5 * hits["en"]) else "en"


def detect_language(text: str | None, short: bool = False) -> str | None:
    """ISO 639-1 code of ``text``'s language (see the module notes), or None. ``short``: also
    read Latin-script texts under six words (requests) by their function words: none of
    English, and two of the language's or one and an accented letter; otherwise such texts
    are English."""
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


NON_LATIN = {code for code, _ in SCRIPTS}
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
    if any(lang in NON_LATIN for lang in other) or len(other) >= max(1.0, MULTILINGUAL_SHARE * len(langs)):
        return "text-multi"
    return "text-en"
