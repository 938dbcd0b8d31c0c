"""Video understanding: frames sampled with PyAV (about one per second, capped) go through the
image encoder and are mean-pooled; a few frames are read by OCR; the sound track goes through
YAMNet; English speech is transcribed (other languages are skipped, with the reason).

The video vector is the pooled frame vector (1280-d, EfficientNet-Lite0 space); the sound track's
vector belongs to the ``audio`` modality and the OCR text and transcript feed the item's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avrec.encoders.base import Encoder, l2_normalize

MAX_FRAMES = 16
OCR_FRAMES = 3
SPEECH_MIN_SCORE = 0.3  # YAMNet "Speech" score above which the sound track is transcribed


@dataclass
class VideoResult:
    vector: np.ndarray
    attributes: dict
    audio_vector: np.ndarray | None = None
    audio_attributes: dict | None = None
    audio_failure: str | None = None
    frames: int = 0
    notes: list[str] = field(default_factory=list)


def _frame_labels(probs: np.ndarray) -> list[str]:
    """Labels of the frames' mean class probabilities."""
    from avrec.encoders.image import visual_words
    from avrec.encoders.registry import get_encoder

    return visual_words(get_encoder("image").labels(probs.mean(axis=0)))


def sound_track(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """(samples, YAMNet vector, sound attributes) of a file's audio; MediaError when unreadable."""
    from avrec.encoders.media import load_audio
    from avrec.encoders.registry import get_encoder

    samples = load_audio(path)
    enc = get_encoder("audio")
    vec, scores = enc.analyse(samples)
    return samples, vec, enc.attributes(scores)


def analyse_video(
    path: Path,
    language: str | None = None,
    ocr: bool = True,
    speech: bool = True,
    max_frames: int = MAX_FRAMES,
) -> VideoResult:
    """Frames -> pooled vector + visual labels (+ OCR, + sound track, + English transcript).
    Raises MediaError when the file has no decodable video; a missing or broken sound track
    only leaves the audio part empty (``audio_failure`` says why)."""
    from avrec.encoders.media import MediaError, sample_frames
    from avrec.encoders.registry import get_encoder

    frames, duration = sample_frames(path, per_second=1.0, max_frames=max_frames)
    vecs, probs = get_encoder("image").analyse(frames)
    attrs: dict = {
        "visual_labels": _frame_labels(probs),
        "frames": len(frames),
        "duration_s": round(duration, 2),
    }
    if ocr:
        from avrec.encoders.ocr import ocr_text

        picks = sorted(
            {round(i) for i in np.linspace(0, len(frames) - 1, min(OCR_FRAMES, len(frames)))}
        )
        attrs["ocr_text"] = ocr_text([frames[i] for i in picks])
    result = VideoResult(l2_normalize(vecs.mean(axis=0)), attrs, frames=len(frames))
    try:
        samples, avec, aattrs = sound_track(path)
    except MediaError as exc:
        result.audio_failure = str(exc)
        return result
    result.audio_vector, result.audio_attributes = avec, aattrs
    if speech and aattrs.get("speech", 0.0) >= SPEECH_MIN_SCORE:
        from avrec.encoders.speech import transcribe_english

        tr = transcribe_english(samples, language_hint=language)
        if tr.text:
            attrs["transcript"] = tr.text
        else:
            attrs["speech_skipped"] = tr.skipped
    return result


class VideoEncoder(Encoder):
    """The encoder contract for videos: ``encode(paths) -> [n, 1280]`` pooled frame vectors
    (frames only; :func:`analyse_video` adds OCR, sound and speech)."""

    name = "video"
    version = "efficientnet-lite0-onnx-frames-1"
    modality = "video"
    dim = 1280

    def __init__(self, max_frames: int = MAX_FRAMES):
        self.max_frames = max_frames

    def encode(self, batch: Sequence[str | Path]) -> np.ndarray:
        from avrec.encoders.media import sample_frames
        from avrec.encoders.registry import get_encoder

        out = np.zeros((len(batch), self.dim), np.float32)
        for n, path in enumerate(batch):
            frames, _ = sample_frames(Path(path), per_second=1.0, max_frames=self.max_frames)
            out[n] = l2_normalize(get_encoder("image").analyse(frames)[0].mean(axis=0))
        return out
