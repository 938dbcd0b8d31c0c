"""``cached_media``: what ``avrec encode`` left in the cache is found again by each file's content
hash (no model work), a file not encoded yet is counted, and the videos' on-screen text and
speech join the item text."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _put(modality_key: str, path, vector: np.ndarray, attrs: dict) -> None:
    from avrec.encoders.cache import EmbeddingCache, file_key

    EmbeddingCache(modality_key).put_many(
        [file_key(path)], vector[None].astype(np.float32), [attrs]
    )


def test_cached_vectors_and_video_texts_are_found_by_content(avrec_home, tmp_path):
    from avrec.encoders.itemtext import item_text
    from avrec.encoders.understand import VERSIONS, cached_media

    (tmp_path / "media").mkdir()
    for name, payload in [
        ("a.jpg", b"poster a"),
        ("b.jpg", b"poster b"),
        ("c.mp4", b"video c"),
        ("same.mp4", b"video c"),
    ]:
        (tmp_path / "media" / name).write_bytes(payload)
    _put(f"image@{VERSIONS['image']}", tmp_path / "media" / "a.jpg", np.full(1280, 0.5), {})
    _put(
        f"video@{VERSIONS['video']}",
        tmp_path / "media" / "c.mp4",
        np.full(1280, 0.25),
        {"ocr_text": "SALE 50%", "transcript": "welcome to the kitchen"},
    )
    _put(f"audio@{VERSIONS['audio']}", tmp_path / "media" / "c.mp4", np.full(1024, 0.75), {})
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d", "e"],
            "title": ["A", "B", "C", "D", "E"],
            "image": ["media/a.jpg", "media/b.jpg", None, None, "../outside.jpg"],
            # d's file has other name, same bytes: the cache key is the content
            "video": [None, None, "media/c.mp4", "media/same.mp4", None],
        }
    )

    found = cached_media(items, tmp_path)

    assert sorted(found.vectors) == ["audio", "image", "video"]
    assert found.vectors["image"][:, 0].tolist() == [0.5, 0.0, 0.0, 0.0, 0.0]
    assert found.vectors["video"][:, 0].tolist() == [0.0, 0.0, 0.25, 0.25, 0.0]
    assert found.vectors["audio"][:, 0].tolist() == [0.0, 0.0, 0.75, 0.75, 0.0]  # the sound track
    assert found.missing == {"image": 1}  # b; e's hostile path is no readable file
    assert found.texts["ocr_text"] == [None, None, "SALE 50%", "SALE 50%", None]

    row = {
        **items.iloc[2].to_dict(),
        "ocr_text": found.texts["ocr_text"][2],
        "transcript": found.texts["transcript"][2],
    }
    assert item_text(row) == "C. On screen: SALE 50%. Speech: welcome to the kitchen"

    only_video = cached_media(items, tmp_path, ("video",))
    assert sorted(only_video.vectors) == ["video"] and only_video.missing == {}


def test_evaluation_features_carry_the_cached_media(avrec_home, tmp_path):
    """`avrec evaluate` gives the models what `avrec train` gives them."""
    from avrec.data import Dataset
    from avrec.encoders.understand import VERSIONS
    from avrec.fusion.features import item_features, item_texts

    (tmp_path / "clip.mp4").write_bytes(b"a clip")
    _put(
        f"video@{VERSIONS['video']}",
        tmp_path / "clip.mp4",
        np.full(1280, 0.5),
        {"transcript": "hello there"},
    )
    ds = Dataset(
        pd.DataFrame({"item_id": ["c", "d"], "title": ["C", "D"], "video": ["clip.mp4", None]}),
        pd.DataFrame({"user_id": ["u"], "item_id": ["c"]}),
        root=tmp_path,
    )
    features = item_features(ds, text_encoder=None, media=True)
    assert features["video"][:, 0].tolist() == [0.5, 0.0]
    assert "audio" not in features  # nothing cached for the sound track
    assert "video" not in item_features(ds, text_encoder=None)
    assert item_texts(ds) == ["C", "D"]  # the dataset itself is left as it was
