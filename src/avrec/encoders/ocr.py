"""On-screen text (posters, thumbnails, video frames) by OCR: PP-OCRv4 through
``rapidocr-onnxruntime`` 1.4.4 (English and Chinese; models inside the wheel).

About 0.6 s per image on two cores, so the catalog pipeline runs it on a few video frames, and on
images only when asked. Lines read with confidence below ``MIN_SCORE`` are dropped; lines repeated
across frames are kept once, in reading order.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

MIN_SCORE = 0.6
MAX_SIDE = 960  # larger images are scaled down first (speed; OCR quality holds)

_engine = None
_lock = threading.Lock()


def _ocr():
    global _engine
    with _lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR

            _engine = RapidOCR()
        return _engine


def _as_array(image: Any) -> np.ndarray:
    """PIL image, path or HxWx3 array -> RGB uint8 array, at most ``MAX_SIDE`` on its long side."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image.astype(np.uint8))
    elif not isinstance(image, Image.Image):
        from avrec.encoders.media import load_image

        image = load_image(image)
    image = image.convert("RGB")
    scale = MAX_SIDE / max(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)))
    return np.asarray(image)


def read_lines(image: Any) -> list[str]:
    """Text lines found in one image, top to bottom."""
    result, _ = _ocr()(_as_array(image)[:, :, ::-1])  # rapidocr expects OpenCV's BGR order
    lines = []
    for _box, text, score in sorted(result or [], key=lambda r: (r[0][0][1], r[0][0][0])):
        text = str(text).strip()
        if text and float(score) >= MIN_SCORE:
            lines.append(text)
    return lines


def ocr_text(images: Sequence[Any]) -> str:
    """All distinct lines over ``images`` joined with " / " ("" when none)."""
    seen: dict[str, None] = {}
    for image in images:
        for line in read_lines(image):
            seen.setdefault(line, None)
    return " / ".join(seen)
