"""models.memory.PeakMemory: the peak of what a block of work allocates, torch's included."""

import sys

import numpy as np
import pytest

from avrec.models.memory import PeakMemory

MIB = 2**20
linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="resident high-water mark is read from Linux's /proc",
)


def _touch(nbytes: int) -> np.ndarray:
    a = np.empty(nbytes, np.uint8)
    a[::4096] = 1  # resident: every page written
    return a


@linux
def test_peak_counts_a_numpy_array_freed_before_the_end():
    with PeakMemory() as peak:
        a = _touch(300 * MIB)
        del a  # gone at the end: only the peak remembers it
    assert peak.method == "rss"
    assert 290 <= peak.mib < 360


@linux
def test_peak_counts_torch_tensors_which_tracemalloc_does_not_see():
    torch = pytest.importorskip("torch")
    with PeakMemory() as peak:
        t = torch.ones(50 * MIB)  # 200 MiB of float32
        del t
    assert 190 <= peak.mib < 260


@linux
def test_peak_starts_from_zero_each_time():
    keep = _touch(200 * MIB)
    with PeakMemory() as small:
        b = _touch(20 * MIB)
        del b
    assert 15 <= small.mib < 60  # the earlier 200 MiB is not counted
    del keep


def test_without_proc_it_falls_back_to_tracemalloc(tmp_path):
    with PeakMemory(proc=tmp_path / "no-proc") as peak:
        a = np.ones(100 * MIB // 8)
        del a
    assert peak.method == "tracemalloc"
    assert 95 <= peak.mib < 130
