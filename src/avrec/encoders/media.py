"""Reading media files safely: images with Pillow, audio and video with PyAV (FFmpeg).
Every failure becomes a :class:`MediaError` naming the file and the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avrec.errors import AvrecError

MAX_MEDIA_BYTES = 2 * 1024**3


class MediaError(AvrecError):
    """A media file that cannot be used (missing, empty, corrupt, wrong type)."""


def _check(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: file does not exist")
    size = path.stat().st_size
    if size == 0:
        raise MediaError(f"{path}: file is empty")
    if size > MAX_MEDIA_BYTES:
        raise MediaError(f"{path}: file is larger than 2 GiB")
    return path


def load_image(path: Path):
    """An RGB PIL image."""
    from PIL import Image, UnidentifiedImageError

    path = _check(path)
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise MediaError(f"{path}: not a readable image ({exc})") from None


def load_audio(path: Path, rate: int = 16_000, max_seconds: float = 600.0) -> np.ndarray:
    """Mono float32 samples at ``rate`` Hz from any audio or video file FFmpeg reads."""
    import av

    path = _check(path)
    try:
        with av.open(str(path)) as container:
            streams = container.streams.audio
            if not streams:
                raise MediaError(f"{path}: no audio track")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            chunks, total = [], 0
            for frame in container.decode(streams[0]):
                for out in resampler.resample(frame):
                    data = out.to_ndarray().reshape(-1)
                    chunks.append(data)
                    total += len(data)
                if total >= max_seconds * rate:
                    break
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise MediaError(f"{path}: not a readable audio/video file ({exc})") from None
    if not chunks:
        raise MediaError(f"{path}: the audio track is empty")
    return np.concatenate(chunks).astype(np.float32)[: int(max_seconds * rate)]


def sample_frames(path: Path, per_second: float = 1.0, max_frames: int = 16) -> tuple[list, float]:
    """About ``per_second`` RGB frames (PIL) per second of video, at most ``max_frames``
    (spread over the whole video), and the duration in seconds."""
    import av

    path = _check(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video track")
            stream = container.streams.video[0]
            time_base = stream.time_base
            if time_base is None:
                raise MediaError(f"{path}: video track has no time base")
            duration = (
                float(stream.duration * time_base)
                if stream.duration
                else (container.duration / 1_000_000 if container.duration else 0.0)
            )
            wanted = max(1, min(max_frames, int(duration * per_second) or 1))
            times = [duration * (n + 0.5) / wanted for n in range(wanted)]
            frames, next_t = [], 0
            for frame in container.decode(stream):
                t = float(frame.pts * time_base) if frame.pts is not None else 0.0
                if next_t < len(times) and t >= times[next_t]:
                    frames.append(frame.to_image())
                    next_t += 1
                    if next_t >= len(times):
                        break
            if not frames:
                raise MediaError(f"{path}: no decodable video frames")
            return frames, duration
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise MediaError(f"{path}: not a readable video ({exc})") from None
