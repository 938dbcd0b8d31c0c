"""Benchmark: the matching models against the issue's quality targets, baselines side by side
in the same run, through the evaluation harness (``avrec.evaluation.runner.evaluate``), with
training time and peak memory per model. Regenerates the "models" section of
docs/benchmarks.md.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_models.py [--datasets ml-100k,ml-latest-small]
    python benchmarks/bench_models.py --render   # rewrite the section from saved results

Each dataset's results are saved to ``reports/benchmarks/models-<dataset>.json`` (so the two
datasets can run as separate processes); the section is rendered from every saved file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._report import write_section

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ready"
OUT = ROOT / "reports" / "benchmarks"
NOQ = {"query_encoder": None}
#: (protocol, seeds, models, configs, target metric, target text)
PLAN = {
    "ml-100k": [
        (
            "msr",
            [0, 1, 2],
            [
                "popularity",
                "itemknn",
                "ease",
                "als",
                "bpr",
                "vae",
                "content",
                "hybrid",
                "hybrid-ltr",
                "two-tower",
                "sequential",
            ],
            {"content": NOQ, "hybrid": NOQ, "hybrid-ltr": {"hybrid": NOQ}},
            "ndcg@10",
            ">= 0.50",
        ),
        (
            "cold-items",
            [0, 1, 2],
            ["popularity", "content", "hybrid", "two-tower"],
            {"content": NOQ, "hybrid": NOQ},
            "ndcg@10",
            ">= 0.50",
        ),
        # next-item setting: recency-weighted history, plain EASE weights (content side
        # information helps the random split but not predicting the latest item); the default's
        # learned recency keeps the random split's quality and stays near 0 here
        # (docs/benchmarks.md, "recency"), so the recency is fixed
        (
            "last",
            [0],
            ["popularity", "ease", "hybrid", "sequential"],
            {
                "hybrid": {
                    **NOQ,
                    "recency_mix": 1.0,
                    "recency_learn": False,
                    "side_weight": 0.0,
                    "ease_dropout": 0.0,
                    "content_weight": 0.1,
                }
            },
            "hr@10",
            ">= 0.20",
        ),
        (
            "cold-users",
            [0, 1, 2],
            ["popularity", "ease", "content", "hybrid"],
            {"content": NOQ, "hybrid": NOQ},
            "ndcg@10",
            "clearly above popularity",
        ),
        ("kfold", [0], ["bias", "rating"], {}, "mae", "<= 0.70"),
    ],
    "ml-latest-small": [
        (
            "random",
            [0, 1],
            [
                "popularity",
                "itemknn",
                "ease",
                "als",
                "bpr",
                "vae",
                "content",
                "hybrid",
                "hybrid-ltr",
                "two-tower",
                "sequential",
            ],
            {"content": NOQ, "hybrid": NOQ, "hybrid-ltr": {"hybrid": NOQ}},
            "ndcg@10",
            "above EASE",
        ),
        (
            "kfold",
            [0],
            ["bias", "rating"],
            {},
            "mae",
            "as low as possible (no floor set for this dataset)",
        ),
    ],
}


#: what the models import lazily in ``fit``
LAZY_IMPORTS = (
    "torch",
    "lightgbm",
    "implicit.cpu.als",
    "implicit.cpu.bpr",
    "threadpoolctl",
    "avrec.models.hybrid.coldmap",
    "avrec.models.hybrid.coldrank",
    "avrec.models.neural.towers",
    "avrec.models.hybrid.prefix",
    "avrec.models.neural.sequential",
    "avrec.models.neural.two_tower",
    "avrec.models.validation",
    "avrec.models.neural.vae",
)


def import_model_libraries() -> None:
    """Import :data:`LAZY_IMPORTS` up front, so that the first fit of a run (whose peak memory
    is measured) does not also count a library's import."""
    import importlib

    for module in LAZY_IMPORTS:
        importlib.import_module(module)


def run_dataset(name: str, skip: set[str], previous: dict | None) -> dict:
    from avrec.data.loaders import load_dataset
    from avrec.evaluation.runner import evaluate
    from avrec.fusion.features import item_features

    dataset = load_dataset(DATA / name)
    features = item_features(dataset)
    result = {"dataset": name, "load_before": os.getloadavg()[0], "protocols": []}
    stamp = time.strftime("%H:%M UTC", time.gmtime())
    before = {p["protocol"]: p for p in (previous or {}).get("protocols", [])}
    for protocol, seeds, all_models, configs, metric, target in PLAN[name]:
        models = [m for m in all_models if m not in skip]
        if not models and protocol in before:  # nothing to rerun: keep the saved record whole
            result["protocols"].append(before[protocol])
            continue
        t0 = time.perf_counter()
        runs = evaluate(
            dataset,
            protocol,
            models,
            [10],
            seeds,
            configs,
            item_features=features,
            log=lambda m: print(m, flush=True),
        )
        rows = {}
        for model in models:
            mine = [r for r in runs if r.model == model]
            keys = [
                k for k in ("ndcg@10", "hr@10", "recall@10", "mae", "rmse") if k in mine[0].metrics
            ]
            rows[model] = {k: float(np.mean([r.metrics[k] for r in mine])) for k in keys}
            if len(seeds) > 1:
                rows[model]["per_seed"] = {
                    k: [round(float(r.metrics[k]), 4) for r in mine] for k in keys
                }
            rows[model]["fit_s"] = float(np.median([r.fit_seconds for r in mine]))
            rows[model]["peak_mb"] = float(max(r.peak_mb for r in mine))
            rows[model]["time_capped"] = [
                f"seed {r.seed}: {'; '.join(r.time_capped)}" for r in mine if r.time_capped
            ]
            rows[model]["run_at"] = stamp
        old = before.get(protocol, {}).get("models", {})
        earlier = (previous or {}).get("run_at", "an earlier run")
        rows = {
            m: rows[m] if m in rows else {"run_at": earlier, **old[m]}
            for m in all_models
            if m in rows or m in old
        }
        result["protocols"].append(
            {
                "protocol": protocol,
                "seeds": seeds,
                "metric": metric,
                "target": target,
                "models": rows,
                "wall_s": time.perf_counter() - t0,
                "partial": len(models) < len(rows),
            }
        )
    result["load_after"] = os.getloadavg()[0]
    result["run_at"] = stamp
    return result


def render() -> str:
    parts = []
    for name in PLAN:
        path = OUT / f"models-{name}.json"
        if not path.is_file():
            continue
        res = json.loads(path.read_text())
        parts.append(
            f"### {name} (run at {res.get('run_at', '?')})\n\n"
            f"1-minute load average {res['load_before']:.1f} before, "
            f"{res['load_after']:.1f} after (2 cores; above 2 means the machine was "
            "shared with other work during the run, so times are inflated).\n"
        )
        for p in res["protocols"]:
            lines = [
                (
                    f"**`{p['protocol']}`** (seeds {p['seeds']}; target: {p['metric']} "
                    f"{p['target']}; {p['wall_s']:.0f} s"
                    f"{' for the rows of this run' if p.get('partial') else ''})\n"
                ),
                "| model | ndcg@10 | hr@10 | recall@10 | MAE | RMSE | fit (s) | peak MiB |",
                "|---|---|---|---|---|---|---|---|",
            ]
            best = max(
                p["models"].items(),
                key=lambda kv: (
                    kv[1].get(p["metric"], 0) if p["metric"] != "mae" else -kv[1].get("mae", 9)
                ),
            )[0]
            for model, row in p["models"].items():
                cells = [
                    (
                        f"{row[k]:.4f}"
                        + (
                            f" ({', '.join(f'{v:.4f}' for v in row['per_seed'][k])})"
                            if len(row.get("per_seed", {}).get(k, [])) > 1
                            else ""
                        )
                    )
                    if k in row
                    else "–"
                    for k in ("ndcg@10", "hr@10", "recall@10", "mae", "rmse")
                ]
                label = f"**{model}**" if model == best else model
                if row.get("run_at") and row["run_at"] != res.get("run_at"):
                    label += f" (run at {row['run_at']})"
                if row.get("time_capped"):
                    label += f" (time-capped: {' / '.join(row['time_capped'])})"
                lines.append(
                    f"| {label} | "
                    + " | ".join(cells)
                    + f" | {row['fit_s']:.1f} | {row['peak_mb']:.0f} |"
                )
            parts.append("\n".join(lines) + "\n")
    return (
        "Models through the evaluation harness (training part only, full-catalog ranking "
        "with training items excluded; cold-items: the held-out items only; cold-users: "
        "first 3 interactions as history; kfold: explicit ratings, 5 folds). Mean over the "
        "seeds listed (each seed in brackets where there are several); bold = best on the target "
        "metric. Fit time is the median per "
        "training run, peak MiB the most memory one fit added to the process "
        "(`models.memory.PeakMemory`: resident high-water mark less the resident size at the "
        "start, so numpy, torch, LightGBM and implicit all count). "
        "Models train for the epochs and early stopping of their config (no wall-clock "
        "budget since 2026-12-07; a row whose fit an optional cap stopped says so).\n\n"
        + "\n".join(parts)
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default=",".join(PLAN))
    ap.add_argument(
        "--render", action="store_true", help="only rewrite the section from saved results"
    )
    ap.add_argument("--skip", default="", help="models not to rerun (their saved rows are kept)")
    args = ap.parse_args()
    if not args.render:
        OUT.mkdir(parents=True, exist_ok=True)
        import_model_libraries()
        for name in args.datasets.split(","):
            if not (DATA / name).exists():
                print(f"skip {name}: {DATA / name} not found")
                continue
            saved = OUT / f"models-{name}.json"
            previous = json.loads(saved.read_text()) if saved.is_file() else None
            result = run_dataset(name, set(filter(None, args.skip.split(","))), previous)
            (OUT / f"models-{name}.json").write_text(json.dumps(result, indent=2))
    write_section(
        "models",
        "Matching models: quality targets, time and memory",
        render(),
        "benchmarks/bench_models.py",
    )


if __name__ == "__main__":
    main()
