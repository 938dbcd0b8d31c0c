"""Benchmark: two-tower with frozen text vectors against two-tower with the top MiniLM layer(s)
fine-tuned (``finetune_text_layers``), through the evaluation harness, same seed and splits.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_text_finetune.py msr:frozen msr:ft1 \
        msr:ft1-lr0 cold-items:frozen cold-items:ft1 [--seed 0]

``ft1-lr0`` is the control: the same fine-tuning phase with the text layers' learning rate set
to 0, so only the towers keep training -- what is left of ``ft1``'s gain is the text's doing.
One JSON line per run is appended to ``reports/benchmarks/text-finetune.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ready" / "ml-100k"
OUT = ROOT / "reports" / "benchmarks" / "text-finetune.jsonl"
#: the frozen phase runs a fixed number of epochs (no time cut), so it is the same in every
#: variant and the fine-tuned variants are that frozen model plus the fine-tuning phase
FROZEN = {"max_epochs": 8}
VARIANTS = {
    "frozen": {},
    "ft1": {"finetune_text_layers": 1},
    "ft1-lr0": {"finetune_text_layers": 1, "finetune_lr": 0.0},
    "ft2": {"finetune_text_layers": 2},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", help="protocol:variant, e.g. msr:ft1")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import avrec.models.neural.text_finetune as ft
    from avrec.data.loaders import load_dataset
    from avrec.evaluation.runner import evaluate
    from avrec.fusion.features import item_features

    phase: dict = {}
    inner = ft.finetune_two_tower

    def logged(model, *a, **kw):  # record the fine-tuning phase's own log and time
        start = time.perf_counter()
        phase.update(frozen_epochs=len(model.history_log), frozen_val_hr10=max(model.history_log))
        tuner = inner(model, *a, **kw)
        phase.update(finetune_s=time.perf_counter() - start, finetune_val_hr10=model.finetune_log)
        return tuner

    ft.finetune_two_tower = logged
    dataset = load_dataset(DATA)
    features = item_features(dataset)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    for run in args.runs:
        phase.clear()
        protocol, variant = run.split(":")
        config = {**FROZEN, **VARIANTS[variant]}
        t0 = time.perf_counter()
        (result,) = evaluate(
            dataset,
            protocol,
            ["two-tower"],
            [10],
            [args.seed],
            {"two-tower": config},
            item_features=features,
            log=lambda _: None,
        )
        record = {
            "protocol": protocol,
            "variant": variant,
            "seed": args.seed,
            "config": config,
            "ndcg@10": result.metrics["ndcg@10"],
            "hr@10": result.metrics["hr@10"],
            "fit_s": result.fit_seconds,
            "total_s": time.perf_counter() - t0,
            "load": os.getloadavg()[0],
            **phase,
        }
        print(json.dumps(record), flush=True)
        with OUT.open("a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
