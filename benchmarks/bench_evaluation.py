"""Benchmark: every protocol on ml-100k and ml-latest-small, baselines side by side, with
reports (HTML + plots) under reports/benchmarks/. Regenerates the "evaluation" section of
docs/benchmarks.md.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_evaluation.py \
        [--models bpr,content,hybrid] [--seeds 0,1,2] [--large-seeds 0,1] [--protocols msr,last]

Seeds: ``--seeds`` for ml-100k, ``--large-seeds`` for ml-latest-small (EASE there inverts a
9,742 x 9,742 Gram matrix, ~45 s a fit on this machine). ``last`` and ``temporal`` are
deterministic splits, so their spread over seeds is only model initialisation; ``kfold`` uses
seed 0 and its 5 folds are the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._report import write_section

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {
    "ml-100k": ROOT.parent / "shared" / "data" / "ready" / "ml-100k",
    "ml-latest-small": ROOT.parent / "shared" / "data" / "ready" / "ml-latest-small",
}
#: requests in natural language play no part in these protocols
CONFIGS = {"content": {"query_encoder": None}, "hybrid": {"query_encoder": None}}
#: per-protocol settings chosen on a validation split carved from the training part only
#: (leave-last-out inside the training part of the `last` split: recency_mix 0 / 0.5 / 0.8 / 1
#: gave HR@10 0.156 / 0.175 / 0.211 / 0.220 on ml-100k)
PROTOCOL_CONFIGS = {
    "last": {"hybrid": {"query_encoder": None, "recency_mix": 1.0, "recency_learn": False}}
}
PROTOCOLS = ("msr", "random", "last", "temporal", "cold-items", "cold-users", "kfold")
RANK_COLS = [
    "ndcg@10",
    "recall@10",
    "hr@10",
    "mrr@10",
    "map@10",
    "auc",
    "ndcg@20",
    "recall@20",
    "coverage@10",
    "diversity@10",
    "novelty@10",
    "popularity@10",
]


def main() -> None:
    from avrec.data.loaders import load_dataset
    from avrec.evaluation.api import evaluate_to_report
    from avrec.evaluation.report import with_resources

    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="bpr,content,hybrid")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--large-seeds", default="0,1")
    ap.add_argument("--protocols", default=",".join(PROTOCOLS))
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument(
        "--from-reports",
        action="store_true",
        help="rebuild the section from the results.json files of an earlier run",
    )
    args = ap.parse_args()
    models = [m for m in args.models.split(",") if m]
    seed_plan = {
        "ml-100k": [int(s) for s in args.seeds.split(",")],
        "ml-latest-small": [int(s) for s in args.large_seeds.split(",")],
    }
    sections = []
    for name in args.datasets.split(","):
        path = DATASETS[name]
        if not path.exists():
            print(f"skip {name}: {path} not found")
            continue
        dataset = load_dataset(path)
        if name == "ml-100k":
            sections.append(_speed(dataset))
        for protocol in args.protocols.split(","):
            seeds = [0] if protocol == "kfold" else seed_plan[name]
            chosen = ["rating"] if protocol == "kfold" else models
            out = ROOT / "reports" / "benchmarks" / f"{name}-{protocol}"
            if args.from_reports:
                if not (out / "results.json").exists():
                    sections.append(
                        f"### {name} — `{protocol}`\n\nNot measured: no "
                        f"`{out.relative_to(ROOT)}/results.json` from an earlier run."
                    )
                    continue
                result = json.loads((out / "results.json").read_text())
                if (out / "resources.json").exists():  # reports written since the split
                    resources = json.loads((out / "resources.json").read_text())
                    result = with_resources(result, resources)
            else:
                t0 = time.perf_counter()
                result = evaluate_to_report(
                    dataset,
                    protocol,
                    chosen,
                    [10, 20],
                    seeds,
                    out,
                    configs={**CONFIGS, **PROTOCOL_CONFIGS.get(protocol, {})},
                    log=lambda m: print(m, flush=True),
                )
                result["wall_seconds"] = time.perf_counter() - t0
                (out / "results.json").write_text(json.dumps(result, indent=2))
            sections.append(_table(name, protocol, result, result.get("wall_seconds")))
    body = (
        "Each model trained on the training part only (leakage guards on: training view of "
        "the dataset folder, empty database during fit); full-catalog ranking with training "
        "items excluded (cold-items: only the held-out items are candidates; cold-users: "
        "first 3 interactions given as history). All interactions count as relevant. "
        "Mean over seeds (kfold: over 5 folds) ± standard deviation over them. Paired tests: "
        "per (seed, user) values against the best baseline, Holm-adjusted. Fit time is per "
        "training run; peak MiB is the most memory one fit added to the process (resident "
        "high-water mark less the resident size at the start). Diversity: mean pairwise cosine "
        "distance of MiniLM text vectors in "
        "the top 10; popularity@10: mean training interaction count of recommended items. "
        "Reports with plots are written to `reports/benchmarks/<dataset>-<protocol>/`.\n\n"
        + "\n\n".join(sections)
    )
    write_section(
        "evaluation",
        "Evaluation: baselines under every protocol",
        body,
        "benchmarks/bench_evaluation.py",
    )


def _speed(dataset) -> str:
    """Wall time of one full ml-100k evaluation of the four baselines (msr, one seed,
    features precomputed), median of 3."""
    from avrec.evaluation.runner import RANKING_BASELINES, evaluate
    from avrec.fusion.features import item_features

    features = item_features(dataset)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        evaluate(
            dataset,
            "msr",
            RANKING_BASELINES,
            [10, 20],
            [0],
            item_features=features,
            log=lambda _: None,
        )
        times.append(time.perf_counter() - t0)
    return (
        f"Speed: one full ml-100k `msr` evaluation of popularity, item-kNN, EASE and ALS "
        f"(training, scoring all 943 users over the 1,682-item catalog, all metrics): "
        f"median {statistics.median(times):.1f} s of 3 runs "
        f"({', '.join(f'{t:.1f}' for t in times)} s), OPENBLAS_NUM_THREADS=1."
    )


def _fmt(row: pd.Series, col: str) -> str:
    value = row.get(col)
    if value is None or pd.isna(value):
        return "–"
    std = row.get(col + "_std", 0)
    digits = 1 if col == "popularity@10" else 4
    return f"{value:.{digits}f}" + (f" ±{std:.{digits}f}" if std and std > 0.00005 else "")


def _table(dataset: str, protocol: str, result: dict, seconds: float | None) -> str:
    models = pd.DataFrame(result["models"]).T
    cols = (["mae", "rmse"] if result.get("rating_metric") else []) + RANK_COLS
    users = sorted({s["test_users"] for s in result["splits"]})
    title = (
        f"### {dataset} — `{protocol}` (seeds {result['seeds']}, {len(result['splits'])} "
        f"split(s), test users {users[0]}–{users[-1]}"
        + (f"; {seconds:.0f} s" if seconds else "")
        + ")\n"
    )
    lines = [
        title,
        "| model | " + " | ".join(cols) + " | fit (s) | peak MiB |",
        "|---" * (len(cols) + 3) + "|",
    ]
    for model, row in models.iterrows():
        lines.append(
            f"| {model} | "
            + " | ".join(_fmt(row, c) for c in cols)
            + f" | {row['fit_seconds']:.2f} | {row['peak_mb']:.0f} |"
        )
    for metric in dict.fromkeys(s["metric"] for s in result["significance"]):
        tests = [s for s in result["significance"] if s["metric"] == metric]

        def p(v) -> str:
            if v is None or pd.isna(v):
                return "n/a"
            return "<1e-300" if v == 0 else f"{v:.2g}"

        sig = ", ".join(
            f"{s['model']} {s['difference']:+.4f} (Holm p={p(s['t_holm'])})" for s in tests
        )
        lines.append(
            f"\nPaired t-test vs best baseline `{tests[0]['baseline']}` on {metric}: {sig}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
