"""``FileKeys``: a media file's content hash is remembered between runs and read again only
when the file changed; a broken memo costs speed, never a wrong key."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd


def test_a_second_run_reads_no_unchanged_file(avrec_home, tmp_path):
    from avrec.encoders.cache import FileKeys, file_key

    files = [tmp_path / f"clip{i}.mp4" for i in range(3)]
    for i, f in enumerate(files):
        f.write_bytes(b"frame" * (i + 1))
    with FileKeys() as keys:
        first = [keys(f) for f in files] + [keys(files[0])]
        assert keys.hashed == 3  # the repeated file was read once
    assert first[:3] == [file_key(f) for f in files]
    with FileKeys() as keys:
        assert [keys(f) for f in files] == first[:3]
        assert keys.hashed == 0


def test_a_changed_file_is_hashed_again(avrec_home, tmp_path):
    from avrec.encoders.cache import FileKeys, file_key

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"old bytes")
    with FileKeys() as keys:
        old = keys(clip)
    before = clip.stat()
    clip.write_bytes(b"new bytes")  # same size, and its modification time is set back
    os.utime(clip, ns=(before.st_atime_ns, before.st_mtime_ns))
    with FileKeys() as keys:
        new = keys(clip)
        assert keys.hashed == 1
    assert new == file_key(clip) != old


def test_no_memo_is_made_until_a_file_is_asked_for(avrec_home):
    from avrec.encoders.cache import FileKeys

    with FileKeys() as keys:
        pass
    assert not keys.path.exists()


def test_a_broken_memo_falls_back_to_hashing(avrec_home, tmp_path):
    from avrec.encoders.cache import FileKeys, file_key

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"bytes")
    memo = FileKeys().path
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_bytes(b"this is not a database" * 100)
    for _ in range(2):
        with FileKeys() as keys:
            assert keys(clip) == file_key(clip)
            assert keys.hashed == 1


def test_cached_media_twice_reads_the_files_once(avrec_home, tmp_path, monkeypatch):
    from avrec.encoders import cache
    from avrec.encoders.understand import VERSIONS, cached_media

    (tmp_path / "a.jpg").write_bytes(b"poster a")
    cache.EmbeddingCache(f"image@{VERSIONS['image']}").put_many(
        [cache.file_key(tmp_path / "a.jpg")], np.ones((1, 1280), np.float32)
    )
    items = pd.DataFrame({"item_id": ["a"], "title": ["A"], "image": ["a.jpg"]})
    reads = []
    real = cache.file_key
    monkeypatch.setattr(cache, "file_key", lambda p, *a: reads.append(p) or real(p, *a))

    for _ in range(2):
        assert cached_media(items, tmp_path).vectors["image"][0, 0] == 1.0
    assert len(reads) == 1
