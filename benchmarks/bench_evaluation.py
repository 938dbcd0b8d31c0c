"""Benchmark: every protocol on ml-100k and ml-latest-small, baselines side by side, with
reports (HTML + plots) under reports/benchmarks/. Regenerates the "evaluation" section of
docs/benchmarks.md.

    python benchmarks/bench_evaluation.py [--models bpr,content] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._report import write_section  # noqa: E402

DATASETS = {"ml-100k": ROOT.parent / "shared" / "data" / "ready" / "ml-100k",
            "ml-latest-small": ROOT.parent / "shared" / "data" / "ready" / "ml-latest-small"}
#: requests in natural language play no part in these protocols
CONFIGS = {"content": {"query_encoder": None}, "hybrid": {"query_encoder": None}}
#: per-protocol settings chosen on a validation split carved from the training part only
#: (leave-last-out inside the training part of the `last` split: recency_mix 0 / 0.5 / 0.8 / 1
#: gave HR@10 0.156 / 0.175 / 0.211 / 0.220 on ml-100k)
PROTOCOL_CONFIGS = {"last": {"hybrid": {"query_encoder": None, "recency_mix": 1.0}}}
PROTOCOLS = ("msr", "random", "last", "temporal", "cold-items", "cold-users", "kfold")


def main() -> None:
    from avrec.data.loaders import load_dataset
    from avrec.evaluation.api import evaluate_to_report

    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="bpr")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--protocols", default=",".join(PROTOCOLS))
    args = ap.parse_args()
    models = [m for m in args.models.split(",") if m]
    seeds = [int(s) for s in args.seeds.split(",")]
    sections = []
    for name, path in DATASETS.items():
        if not path.exists():
            print(f"skip {name}: {path} not found")
            continue
        dataset = load_dataset(path)
        for protocol in args.protocols.split(","):
            t0 = time.perf_counter()
            out = ROOT / "reports" / "benchmarks" / f"{name}-{protocol}"
            result = evaluate_to_report(dataset, protocol, models if protocol != "kfold" else ["rating"],
                                        [10, 20], seeds, out,
                                        configs=PROTOCOL_CONFIGS.get(protocol, CONFIGS),
                                        log=lambda m: print(m, flush=True))
            sections.append(_table(name, protocol, result, time.perf_counter() - t0))
    body = ("Each model trained on the training part only; full-catalog ranking with training "
            "items excluded (cold-items: only the held-out items are candidates). Mean over "
            f"seeds {seeds} ± standard deviation over seeds. Fit time is per training run; peak "
            "MiB is the largest Python/numpy allocation peak during one fit (tracemalloc). "
            "Reports with plots are written "
            "to `reports/benchmarks/<dataset>-<protocol>/index.html`.\n\n" + "\n\n".join(sections))
    write_section("evaluation", "Evaluation: baselines under every protocol", body,
                  "benchmarks/bench_evaluation.py")


def _table(dataset: str, protocol: str, result: dict, seconds: float) -> str:
    models = pd.DataFrame(result["models"]).T
    if result["main_metric"] == "rmse":
        cols = ["mae", "rmse"]
    else:
        cols = ["ndcg@10", "recall@10", "hr@10", "mrr@10", "map@10", "ndcg@20", "recall@20",
                "coverage@10", "diversity@10", "novelty@10"]
    lines = [f"### {dataset} — `{protocol}` ({seconds:.0f} s)\n",
             "| model | " + " | ".join(cols) + " | fit (s) | peak MiB |", "|---" * (len(cols) + 3) + "|"]
    for model, row in models.iterrows():
        cells = [f"{row[c]:.4f}" + (f" ±{row[c + '_std']:.4f}" if row.get(c + "_std", 0) > 0.00005 else "")
                 for c in cols]
        lines.append(f"| {model} | " + " | ".join(cells) +
                     f" | {row['fit_seconds']:.2f} | {row['peak_mb']:.0f} |")
    if result["significance"]:
        best = result["significance"][0]["baseline"]
        def p(v) -> str:
            return "n/a" if v is None else f"{v:.2g}"

        sig = ", ".join(f"{s['model']} {s['difference']:+.4f} (p={p(s['t_pvalue'])})"
                        for s in result["significance"])
        lines.append(f"\nPaired t-test vs best baseline `{best}` on {result['main_metric']}: {sig}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
