"""Memory: up-front checks for models whose fit holds dense items x items arrays (EASE, the
hybrid, the rating model), so that a catalog too large for the machine gets a clear error
before the work starts, not an out-of-memory kill part way through; and :class:`PeakMemory`,
which measures what a fit takes (the evaluation harness and the benchmarks use it)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Self

from avrec.errors import ResourceError

#: models whose memory grows with the number of users and items, not with its square
SCALABLE_MODELS = ("sparse-ease", "als", "bpr", "two-tower")


def available_bytes(
    proc: Path = Path("/proc"), cgroup: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """Memory this process can still take: the kernel's MemAvailable, lowered to the cgroup's
    headroom where a limit is set (its page cache counted as free, as MemAvailable counts
    it); None where neither can be read (the check is skipped)."""
    have = None
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                have = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        used = int((cgroup / "memory.current").read_text().strip())
        for line in (cgroup / "memory.stat").read_text().splitlines():
            if line.startswith("file "):
                used -= int(line.split()[1])
        if limit != "max":
            headroom = max(int(limit) - used, 0)
            have = headroom if have is None else min(have, headroom)
    except (OSError, ValueError):
        pass
    return have


def require_dense(
    model: str, n_items: int, bytes_per_cell: float, alternatives: tuple[str, ...] = SCALABLE_MODELS
) -> None:
    """Raise :class:`ResourceError` if ``bytes_per_cell * n_items**2`` bytes (the model's peak
    during fit, measured in benchmarks/bench_models.py) exceed :func:`available_bytes`; the
    message names ``alternatives``, models for the same task that scale."""
    need = bytes_per_cell * float(n_items) ** 2
    have = available_bytes()
    if have is None or need <= have:
        return
    gib = 2.0**30
    raise ResourceError(
        f"{model}: a catalog of {n_items:,} items needs about {need / gib:.1f} GiB of memory for "
        f"its items x items weights, and {have / gib:.1f} GiB is available; train a model whose "
        f"memory does not grow with the square of the catalog ({', '.join(alternatives)}) or "
        "use a machine with more memory"
    )


def fits_dense(n_items: int, bytes_per_cell: float) -> bool:
    """Whether ``bytes_per_cell * n_items**2`` bytes fit in :func:`available_bytes` (True
    where that cannot be read), for optional dense parts that are skipped rather than
    refused."""
    have = available_bytes()
    return have is None or bytes_per_cell * float(n_items) ** 2 <= have


def _status_kib(field: str, proc: Path) -> int:
    for line in (proc / "self" / "status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{proc / 'self' / 'status'}: no {field}")


def _release_free_heap() -> None:
    """Collect garbage and hand glibc's free heap back to the kernel, so that memory freed
    before a measurement is not silently reused by the measured work."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakMemory:
    """Peak memory of the work done inside ``with PeakMemory() as peak:``, in MiB
    (``peak.mib``), and how it was measured (``peak.method``).

    ``"rss"`` (Linux): the process's resident high-water mark (VmHWM, reset through
    ``/proc/self/clear_refs``) less its resident size at the start, so every allocation counts:
    Python, numpy, torch, LightGBM, implicit's threads. Elsewhere ``"tracemalloc"``: the peak of
    Python's traced allocations (numpy's included, torch's not)."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self.proc = proc
        self.mib = float("nan")
        self.method = ""

    def __enter__(self) -> Self:
        _release_free_heap()
        try:
            (self.proc / "self" / "clear_refs").write_text("5")
            self._start = _status_kib("VmRSS", self.proc)
            self.method = "rss"
        except (OSError, ValueError):
            import tracemalloc

            tracemalloc.start()
            self.method = "tracemalloc"
        return self

    def __exit__(self, *exc) -> None:
        if self.method == "rss":
            self.mib = max(_status_kib("VmHWM", self.proc) - self._start, 0) / 1024.0
        else:
            import tracemalloc

            self.mib = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
