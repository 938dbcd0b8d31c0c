"""How an item becomes one text for the text encoders.

The fields, in this order, each only when present:
``title``; ``Genres: a, b``; ``Tags: x, y`` (``director:``/``cast:`` prefixes kept readable);
``description``; ``Comments: ...``; ``On screen: <OCR text>``; ``Speech: <transcript>``.
Parts are joined with ". " (with just a space after a part that already ends in ``.!?。！？``).
The text is cut at 2,000 characters by the encoders.
"""

from __future__ import annotations

from collections.abc import Mapping

from avrec.data.dataset import split_multi


def _present(value: object) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def item_text(
    row: Mapping[str, object], ocr: str | None = None, transcript: str | None = None
) -> str:
    """The item's text; ``ocr`` / ``transcript`` default to the row's ``ocr_text`` /
    ``transcript`` fields (what :func:`avrec.encoders.understand.cached_media` found)."""
    ocr_text = ocr if ocr is not None else row.get("ocr_text")
    spoken = transcript if transcript is not None else row.get("transcript")
    parts = []
    if title := _present(row.get("title")):
        parts.append(title)
    if genres := split_multi(row.get("genres")):
        parts.append("Genres: " + ", ".join(genres))
    if tags := split_multi(row.get("tags")):
        parts.append(
            "Tags: " + ", ".join(t.replace(":", ": ", 1) if ":" in t else t for t in tags[:30])
        )
    if description := _present(row.get("description")):
        parts.append(description)
    if comments := _present(row.get("comments")):
        parts.append("Comments: " + comments)
    if ocr := _present(ocr_text):
        parts.append("On screen: " + ocr)
    if transcript := _present(spoken):
        parts.append("Speech: " + transcript)
    text = ""
    for part in parts:
        text += part if not text else (" " if text.endswith(_TERMINAL) else ". ") + part
    return text


_TERMINAL = (".", "!", "?", "。", "！", "？")
