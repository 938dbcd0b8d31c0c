"""read_npz gives what np.load gives, for every layout np.savez writes."""

import numpy as np
import pytest

from avrec.data.npz import Streamed, read_npz, write_npz


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "dense": rng.normal(size=(37, 53)).astype(np.float32),
        "fortran": np.asfortranarray(rng.normal(size=(5, 7))),
        "ints": np.arange(1001, dtype=np.int64),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "scalar": np.array(3.5),
        "text": np.array(["a", "bcd", "é"]),
        "flags": rng.random(9) > 0.5,
        "big_endian": np.arange(6, dtype=">i4").reshape(2, 3),
    }


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_same_arrays_as_np_load(tmp_path, save):
    path = tmp_path / "state.npz"
    arrays = _arrays()
    save(path, **arrays)
    got = read_npz(path)
    with np.load(path, allow_pickle=False) as z:
        assert list(got) == z.files
        for name in z.files:
            want = z[name]
            assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
            np.testing.assert_array_equal(got[name], want)
            assert got[name].flags.writeable
    assert got["fortran"].flags.f_contiguous


def test_model_loaded_in_catalog_chunks_is_the_same(tmp_path):
    import pandas as pd

    from avrec.data.dataset import Dataset
    from avrec.models.base import Recommender, TrainData
    from avrec.models.registry import create_model

    items = pd.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(7)],
            "title": ["a", None, "c", "d", "e", None, "g"],
            "year": [2000, None, 2001, 2002, None, 2003, 2004],
            "genres": ["x|y", "y", None, "x", "z", "z", "x"],
        }
    )
    inter = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u3", "u3"], "item_id": list("01234")})
    inter["item_id"] = "i" + inter["item_id"]
    model = create_model("ease", {"l2": 1.0}).fit(TrainData.from_dataset(Dataset(items, inter)))
    model.save(tmp_path / "m")
    whole = Recommender.load(tmp_path / "m")
    chunked = Recommender.load(tmp_path / "m", catalog_chunk=2)
    pd.testing.assert_frame_equal(whole.catalog, chunked.catalog)
    assert whole.recommend(["u1"], 3).items == chunked.recommend(["u1"], 3).items


def test_large_arrays_can_be_mapped_read_only(tmp_path):
    path = tmp_path / "state.npz"
    arrays = _arrays()
    np.savez(path, **arrays)
    got = read_npz(path, map_from=1000)  # "dense" (7,844 bytes) and "ints" (8,008) are mapped
    for name, value in arrays.items():
        np.testing.assert_array_equal(got[name], value)
        assert got[name].dtype == value.dtype and got[name].shape == value.shape
    mapped = {name for name, value in got.items() if isinstance(value, np.memmap)}
    assert mapped == {"dense", "ints"}
    with pytest.raises(ValueError, match="read-only"):
        got["dense"][0, 0] = 1.0


def test_a_model_reuses_a_catalog_only_with_one_row_per_item(tmp_path, synthetic_dataset):
    from avrec.models.base import Recommender, TrainData
    from avrec.models.registry import create_model

    folder = create_model("popularity").fit(TrainData.from_dataset(synthetic_dataset))
    folder = folder.save(tmp_path / "m")
    read = Recommender.load(folder)
    given = read.catalog.copy(deep=False)
    assert Recommender.load(folder, catalog=given).catalog is given
    shorter = read.catalog.iloc[:-1]
    reloaded = Recommender.load(folder, catalog=shorter).catalog
    assert reloaded is not shorter and len(reloaded) == len(read.catalog)


def test_write_npz_reads_back_as_np_savez_writes(tmp_path):
    arrays = _arrays()
    big = np.random.default_rng(1).normal(size=(50, 30)).astype(np.float32)

    def blocks():
        buf = np.empty((16, 30), dtype=np.float32)  # one buffer, reused: written as it comes
        for start in range(0, 50, 16):
            part = buf[: min(16, 50 - start)]
            part[:] = big[start : start + len(part)]
            yield part

    write_npz(tmp_path / "w.npz", {**arrays, "streamed": Streamed(big.shape, big.dtype, blocks)})
    np.savez(tmp_path / "s.npz", **arrays, streamed=big)
    with np.load(tmp_path / "w.npz") as w, np.load(tmp_path / "s.npz") as s:  # CRCs checked
        assert w.files == s.files
        for key in s.files:
            assert w[key].dtype == s[key].dtype and np.array_equal(w[key], s[key])
    mapped = read_npz(tmp_path / "w.npz", map_from=1000)["streamed"]
    assert isinstance(mapped, np.memmap) and np.array_equal(mapped, big)


def test_write_npz_refuses_a_stream_of_the_wrong_length(tmp_path):
    short = Streamed((5, 2), np.dtype(np.float32), lambda: iter([np.zeros((4, 2), np.float32)]))
    with pytest.raises(ValueError, match="4 rows of 5"):
        write_npz(tmp_path / "w.npz", {"a": short})
