"""Benchmark: a model swap under load. A real uvicorn server follows the registry
(``--follow-registry``); client threads ask for recommendations of random known users without
pause while a second version is promoted, and again while it is rolled back (``--cycles``
times). Reports, per swap and pooled over all swaps, the latency of requests in steady state,
of those sent while the swap was under way (from the promotion until the service serves the new
version, the version ``/health`` names, read in the server's process) and in the seconds after
it, and every failed request.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_swap.py [--dataset ml-latest-small] [--cycles 3]

On a machine shared with other work, run it at a higher priority than the rest (as root:
``nice -n -5 python benchmarks/bench_swap.py``); the section says at which.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._report import write_section

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AVREC_SHARED_DATA", ROOT.parent / "shared" / "data")) / "ready"
#: seconds after a swap still counted as its aftermath (the new state's first requests)
AFTER_S = 2.0


def client(
    base: str, users: list[str], headers: dict, threads: int, rate: float, seconds: float, out: str
) -> None:
    """Runs in its own process (so the server's interpreter lock is not the clients'):
    ``threads`` threads, each sending ``rate`` requests per second on a fixed schedule for
    ``seconds``; writes ``(send time, latency, status)`` rows to ``out`` (.npy)."""
    import httpx

    rows: list[tuple[float, float, int]] = []
    lock = threading.Lock()
    start = time.time() + 0.5

    def run(seed: int) -> None:
        rng = np.random.default_rng(seed)
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            n = 0
            while True:
                due = start + (n + seed / threads) / rate
                if due - start > seconds:
                    return
                time.sleep(max(0.0, due - time.time()))
                user = users[int(rng.integers(len(users)))]
                t0 = time.perf_counter()
                try:
                    status = http.get(f"/api/users/{user}/recommendations?k=10").status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    rows.append((due, time.perf_counter() - t0, status))
                n += 1

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    np.save(out, np.array(rows, dtype=np.float64))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-latest-small")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--rate", type=float, default=10.0, help="requests per second per thread")
    ap.add_argument("--steady-s", type=float, default=15.0)
    ap.add_argument("--cycles", type=int, default=3, help="promote + rollback pairs")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()

    import uvicorn

    from avrec.data.loaders import load_dataset
    from avrec.models.base import TrainData
    from avrec.models.registry import create_model
    from avrec.service.app import create_app
    from avrec.service.settings import ServiceSettings
    from avrec.storage import registry
    from avrec.storage.db import get_engine
    from avrec.storage.ingest import ingest
    from avrec.storage.keys import create_key

    work = Path(tempfile.mkdtemp(prefix="avrec-swap-"))
    dataset = load_dataset(DATA / args.dataset)
    engine = get_engine(f"sqlite:///{work / 'swap.db'}")
    ingest(dataset, engine)
    data = TrainData.from_dataset(dataset)
    versions = []
    for name in ("itemknn", "ease"):
        create_model(name).fit(data).save(work / name)
        versions.append(registry.register(engine, work / name).version)
    registry.promote(engine, versions[0])
    key = create_key(engine, "bench", ["read"])

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = ServiceSettings(
        model_dir=work / "itemknn",
        database_url=str(engine.url),
        follow_registry=True,
        registry_poll_s=0.5,
        rate_per_s=0,
    )
    served = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(served, host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.1)
    base = f"http://127.0.0.1:{port}"
    users = [str(u) for u in dataset.interactions["user_id"].unique()]
    rows_file = str(work / "latencies.npy")
    total = 3 + 2 * args.cycles * (args.steady_s + 12)
    import multiprocessing as mp

    proc = mp.get_context("spawn").Process(
        target=client,
        args=(base, users, {"X-API-Key": key}, args.threads, args.rate, total, rows_file),
    )
    load_before = os.getloadavg()[0]
    proc.start()
    time.sleep(3)
    swaps: list[dict] = []

    def swap(label: str, action, version: str) -> None:
        t_steady = time.time()
        time.sleep(args.steady_s)
        t0 = time.time()
        action()
        # the version /health names, read in this process: a /health request per poll (a new
        # HTTP client each) would compete with the server for its interpreter during the swap
        while served.state.avrec.model_version != version:
            time.sleep(0.05)
        t1 = time.time()
        swaps.append({"label": label, "steady": (t_steady, t0), "during": (t0, t1),
                      "after": (t1, t1 + AFTER_S), "seconds": t1 - t0})  # fmt: skip
        time.sleep(max(0.0, 10 - (t1 - t0)))

    for _ in range(args.cycles):
        swap("promote", lambda: registry.promote(engine, versions[1]), versions[1])
        swap("rollback", lambda: registry.rollback(engine), versions[0])
    proc.join()
    server.should_exit = True
    load_after = os.getloadavg()[0]
    rows = np.load(rows_file)

    def select(*windows: tuple[float, float]) -> np.ndarray:
        keep = np.zeros(len(rows), dtype=bool)
        for lo, hi in windows:
            keep |= (rows[:, 0] >= lo) & (rows[:, 0] < hi)
        return rows[keep]

    def stats(sel: np.ndarray) -> tuple[int, int, float, float]:
        lat = sel[:, 1] * 1000
        return len(sel), int((sel[:, 2] != 200).sum()), *np.percentile(lat, [50, 99])

    lines = [
        f"{args.dataset}: `itemknn` served, `ease` promoted, then rolled back, {args.cycles} "
        f"times ({2 * args.cycles} swaps); {args.threads} client threads in a separate process, "
        f"{args.rate:g} requests per second each on a fixed schedule (GET "
        "/api/users/{id}/recommendations?k=10, random known users); latency by send time; "
        f"registry checked every 0.5 s. Steady: the {args.steady_s:g} s before a swap; during: "
        "from the promotion until the service serves the new version (read in its process "
        "every 0.05 s); after: the "
        f"{AFTER_S:g} s after that. 1-minute load average {load_before:.1f} before, "
        f"{load_after:.1f} after (2 cores: above 2 means other work shared the machine); "
        f"server and clients at niceness {os.nice(0)} (the follower's build thread at "
        "`follow.BUILD_NICENESS`).",
        "",
        "| swap | seconds | steady requests | steady p99 ms | during requests | during p99 ms "
        "| during p99 / steady p99 | after p99 ms | after p99 / steady p99 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ratios, after_ratios = [], []
    for n, sw in enumerate(swaps, 1):
        steady, during, after = (stats(select(sw[w])) for w in ("steady", "during", "after"))
        ratios.append(during[3] / steady[3])
        after_ratios.append(after[3] / steady[3])
        lines.append(
            f"| {n} {sw['label']} | {sw['seconds']:.1f} | {steady[0]} | {steady[3]:.1f} | "
            f"{during[0]} | {during[3]:.1f} | {ratios[-1]:.2f} | {after[3]:.1f} | "
            f"{after_ratios[-1]:.2f} |"
        )
    pooled = {w: stats(select(*(sw[w] for sw in swaps))) for w in ("steady", "during", "after")}
    lines += [
        "",
        "| all swaps pooled | requests | failed | p50 ms | p99 ms | p99 / steady p99 |",
        "|---|---|---|---|---|---|",
    ]
    for w, row in pooled.items():
        lines.append(
            f"| {w} | {row[0]} | {row[1]} | {row[2]:.1f} | {row[3]:.1f} | "
            f"{row[3] / pooled['steady'][3]:.2f} |"
        )
    lines += [
        "",
        f"Median over the {len(swaps)} swaps of p99 during / steady p99: "
        f"{float(np.median(ratios)):.2f} (after: {float(np.median(after_ratios)):.2f}); swap "
        f"time median {float(np.median([sw['seconds'] for sw in swaps])):.1f} s. Failed "
        f"requests in the whole run: {int((rows[:, 2] != 200).sum())} of {len(rows)}.",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("swap", "Model swap under load", body, "benchmarks/bench_swap.py")


if __name__ == "__main__":
    main()
