"""Up-front memory checks for models whose fit holds dense items x items arrays (EASE, the
hybrid): a catalog too large for the machine gets a clear error before the work starts, not an
out-of-memory kill part way through."""

from __future__ import annotations

from pathlib import Path

from avrec.errors import ResourceError

#: models whose memory grows with the number of users and items, not with its square
SCALABLE_MODELS = ("als", "bpr", "two-tower")


def available_bytes(proc: Path = Path("/proc"), cgroup: Path = Path("/sys/fs/cgroup")) -> int | None:
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


def require_dense(model: str, n_items: int, bytes_per_cell: float) -> None:
    """Raise :class:`ResourceError` if ``bytes_per_cell * n_items**2`` bytes (the model's peak
    during fit, measured in benchmarks/bench_models.py) exceed :func:`available_bytes`."""
    need = bytes_per_cell * float(n_items) ** 2
    have = available_bytes()
    if have is None or need <= have:
        return
    gib = 2.0 ** 30
    raise ResourceError(
        f"{model}: a catalog of {n_items:,} items needs about {need / gib:.1f} GiB of memory for "
        f"its items x items weights, and {have / gib:.1f} GiB is available; train a model whose "
        f"memory does not grow with the square of the catalog ({', '.join(SCALABLE_MODELS)}) or "
        "use a machine with more memory")
