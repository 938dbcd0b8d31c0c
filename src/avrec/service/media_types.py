"""The type of a media file from its first bytes (magic numbers), never from its name: only
images, audio and video recognised here are served inline with their type."""

from __future__ import annotations

from pathlib import Path

#: bytes read from the start of a file to recognise it
HEAD = 64


def _riff(head: bytes) -> str | None:
    return {b"WEBP": "image/webp", b"WAVE": "audio/wav"}.get(head[8:12])


def _iso_media(head: bytes) -> str:
    return "audio/mp4" if head[8:12] in (b"M4A ", b"M4B ", b"M4P ") else "video/mp4"


def _ogg(head: bytes) -> str:
    return "video/ogg" if b"theora" in head else "audio/ogg"


def _ebml(head: bytes) -> str:
    return "video/webm" if b"webm" in head else "video/x-matroska"


def _mp3_frame(head: bytes) -> str | None:
    # an MPEG audio frame without an ID3 tag: 11 sync bits, then a valid layer (not 00)
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return "audio/mpeg"
    return None


def sniff(head: bytes) -> str | None:
    """The media type of content starting with ``head``, or None when not a known medium."""
    fixed = (
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"ID3", "audio/mpeg"),
        (b"fLaC", "audio/flac"),
    )
    for magic, kind in fixed:
        if head.startswith(magic):
            return kind
    if head.startswith(b"BM") and head[6:10] == b"\0\0\0\0":  # the header's reserved zeros
        return "image/bmp"
    if head.startswith(b"RIFF"):
        return _riff(head)
    if head[4:8] == b"ftyp":
        return _iso_media(head)
    if head.startswith(b"OggS"):
        return _ogg(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _ebml(head)
    return _mp3_frame(head)


def sniff_file(path: Path) -> str | None:
    with path.open("rb") as f:
        return sniff(f.read(HEAD))
