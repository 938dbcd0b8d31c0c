"""Media types from a file's first bytes: every served kind is recognised, and pages, SVG, text
or a file merely named like an image are not."""

from __future__ import annotations

import pytest

from avrec.service.media_types import sniff

KNOWN = {
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00": "image/jpeg",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR": "image/png",
    b"GIF89a\x01\x00\x01\x00": "image/gif",
    b"GIF87a\x01\x00\x01\x00": "image/gif",
    b"RIFF\x24\x00\x00\x00WEBPVP8 ": "image/webp",
    b"BM\x36\x00\x0c\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00": "image/bmp",
    b"ID3\x04\x00\x00\x00\x00\x00\x00": "audio/mpeg",
    b"\xff\xfb\x90\x64\x00\x00": "audio/mpeg",
    b"RIFF\x24\x08\x00\x00WAVEfmt ": "audio/wav",
    b"OggS\x00\x02" + b"\x00" * 22 + b"\x01\x1e\x01vorbis": "audio/ogg",
    b"OggS\x00\x02" + b"\x00" * 22 + b"\x01\x2a\x80theora": "video/ogg",
    b"fLaC\x00\x00\x00\x22": "audio/flac",
    b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00": "audio/mp4",
    b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00": "video/mp4",
    b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm": "video/webm",
    b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska": "video/x-matroska",
}

UNKNOWN = [
    b"<!doctype html><html><script>alert(1)</script>",
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>',
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    b"BMW and other cars, a text file",
    b"RIFF\x24\x00\x00\x00AVI LIST",
    b"plain text",
    b"",
    b"\xff",
]


@pytest.mark.parametrize("head,kind", KNOWN.items())
def test_known_media_by_their_bytes(head, kind):
    assert sniff(head) == kind


@pytest.mark.parametrize("head", UNKNOWN)
def test_anything_else_is_not_a_medium(head):
    assert sniff(head) is None
