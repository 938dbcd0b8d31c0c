"""Benchmark: what building the next state of a model swap (``service/follow.py``) costs the
threads that answer requests, measured inside one process without a server: while the state
for a saved ``ease`` or ``itemknn`` model is built (as ``follow.build_state`` does it), a thread
that sleeps 1 ms in a loop (a stand-in for a request thread waiting for the interpreter) records
how late it wakes. Reports per model the median over ``--reps`` builds of the build's wall and
CPU time and of the sleeper's largest and 99th-percentile lateness; then the time of the first
answer on the new state (what the first request after the swap pays) and of the next ones;
then the release of the state (``ServiceState.release``, as the follower does it after the
grace period, where the code has it) and the sleeper's largest lateness during it. Run alone it
prints; the figures in docs/benchmarks.md come from running it on this commit and on the one
before it.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_swap_build.py [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AVREC_SHARED_DATA", ROOT.parent / "shared" / "data")) / "ready"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-latest-small")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()

    from avrec.data.loaders import load_dataset
    from avrec.models.base import Recommender, TrainData
    from avrec.models.registry import create_model
    from avrec.service import follow
    from avrec.service import recommend as rec
    from avrec.service.settings import ServiceSettings
    from avrec.service.state import ServiceState
    from avrec.storage.db import get_engine
    from avrec.storage.ingest import ingest

    work = Path(tempfile.mkdtemp(prefix="avrec-swap-build-"))
    dataset = load_dataset(DATA / args.dataset)
    engine = get_engine(f"sqlite:///{work / 'swap.db'}")
    ingest(dataset, engine)
    data = TrainData.from_dataset(dataset)
    names = ("itemknn", "ease")
    for name in names:
        create_model(name).fit(data).save(work / name)
    settings = ServiceSettings(model_dir=work / names[0], database_url=str(engine.url))
    serving = ServiceState(Recommender.load(work / names[0]), engine, None, settings)

    def build(folder: Path) -> ServiceState:
        if hasattr(follow, "build_state"):
            return follow.build_state(serving, settings, folder)
        with follow._quiet_build():  # the steps of swap_to before build_state existed
            model = Recommender.load(folder)
            return ServiceState(model, engine, None, settings)

    late: list[float] = []
    stop = threading.Event()

    def sleeper() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            time.sleep(0.001)
            late.append(time.perf_counter() - t - 0.001)

    threading.Thread(target=sleeper, daemon=True).start()
    users = [str(u) for u in serving.model.fitted_parts()[0].ids]
    rng = np.random.default_rng(0)

    def answer_ms(state: ServiceState) -> float:
        """One request's recommendations as the service computes them (explained)."""
        user = users[int(rng.integers(len(users)))]
        t = time.perf_counter()
        rec.recommend(state, user, None, None, 10, model_user=user)
        return (time.perf_counter() - t) * 1000

    rows: dict[str, list[tuple[float, ...]]] = {n: [] for n in names}
    for _ in range(args.reps):
        for name in names:
            late.clear()
            wall, cpu = time.perf_counter(), time.thread_time()
            state = build(work / name)
            state.items.brief(str(state.items.ids[0]))  # what the first answer reads
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
            lat = np.array(late) * 1000
            first = answer_ms(state)
            after = float(np.median([answer_ms(state) for _ in range(10)]))
            late.clear()
            release = time.perf_counter()
            if hasattr(state, "release"):
                state.close()
                state.release()
            del state
            release = (time.perf_counter() - release) * 1000
            freed = np.array(late or [0.0]) * 1000
            build_ms = (wall * 1000, cpu * 1000, lat.max(), np.percentile(lat, 99))
            rows[name].append((*build_ms, first, after, release, freed.max()))
    stop.set()
    print(
        f"{args.dataset}, median of {args.reps} builds; 1-minute load average "
        f"{os.getloadavg()[0]:.1f} at the end; niceness {os.nice(0)}\n"
    )
    print(
        "| model | build wall ms | build CPU ms | sleeper late max ms | sleeper late p99 ms "
        "| first answer ms | next answers ms | release ms | sleeper late max in release ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        m = np.median(np.array(r), axis=0)
        print(
            f"| {name} | {m[0]:.0f} | {m[1]:.0f} | {m[2]:.1f} | {m[3]:.1f} | {m[4]:.1f} "
            f"| {m[5]:.1f} | {m[6]:.1f} | {m[7]:.1f} |"
        )


if __name__ == "__main__":
    main()
