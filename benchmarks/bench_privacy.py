"""Benchmark: NDCG@10 of the user-level differentially private models against the privacy
budget epsilon, through the evaluation harness (``avrec.evaluation.runner.evaluate``).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_privacy.py tune   # ml-100k msr, seed 1
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_privacy.py run [--datasets ml-100k,...]
    python benchmarks/bench_privacy.py render   # docs/privacy-curve.png + the section
    OMP_NUM_THREADS=1 python benchmarks/bench_privacy.py dp-two-tower [--epsilons 1,8]

``tune`` chooses each model's settings per epsilon on ml-100k's ``msr`` split of seed 1 (never
on the reported seed 0) and saves them to ``reports/benchmarks/privacy-tuning.json``; ``run``
evaluates those settings on seed 0 (``msr`` on ml-100k, ``random`` on ml-latest-small, no
tuning there) with the non-private ``ease`` and ``popularity`` as the epsilon = inf rows. The
noise is seeded (``noise_seed`` = the split's seed) so the figures reproduce.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._report import write_section

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AVREC_SHARED_DATA", ROOT.parent / "shared" / "data")) / "ready"
OUT = ROOT / "reports" / "benchmarks"
EPSILONS = [0.5, 1.0, 2.0, 4.0, 8.0]
PROTOCOL = {"ml-100k": "msr", "ml-latest-small": "random"}
TUNE_SEED, REPORT_SEED = 1, 0
#: the settings tried per epsilon on the tuning split
GRID = {
    "dp-ease": [
        {"rank": rank, "count_share": share, "popularity_weight": weight}
        for rank, (share, weight) in itertools.product(
            [20, 50], [(0.0, 0.0), (0.3, 0.05), (0.3, 0.2), (0.5, 0.5), (0.5, 0.8)]
        )
    ],
    "dp-popularity": [{"max_items_per_user": k} for k in (5, 20, 100, 1000)],
}

#: dp-two-tower (DP-SGD, its own step and section): one setting for every epsilon, chosen on
#: ml-100k msr seed 1; ``inf`` is the same training without noise, ``two-tower`` the
#: non-private model with its defaults
DP_TWO_TOWER = {"batch_size": 256, "item_ids": True, "lr": 1e-3, "epochs": 10, "dim": 64}


def ndcg(dataset, protocol: str, name: str, config: dict, seed: int) -> float:
    from avrec.evaluation.runner import evaluate

    runs = evaluate(dataset, protocol, [name], [10], [seed], {name: config}, log=lambda _: None)
    return float(runs[0].metrics["ndcg@10"])


def tune() -> dict:
    from avrec.data.loaders import load_dataset

    dataset = load_dataset(DATA / "ml-100k")
    chosen: dict = {}
    for name, grid in GRID.items():
        for eps in EPSILONS:
            scores = []
            for settings in grid:
                config = {**settings, "epsilon": eps, "noise_seed": TUNE_SEED}
                scores.append((ndcg(dataset, "msr", name, config, TUNE_SEED), settings))
                print(f"tune {name} eps={eps} {settings}: {scores[-1][0]:.4f}", flush=True)
            best = max(scores, key=lambda s: s[0])
            chosen.setdefault(name, {})[str(eps)] = {"settings": best[1], "ndcg@10": best[0]}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "privacy-tuning.json").write_text(json.dumps(chosen, indent=2))
    return chosen


def run(name: str) -> dict:
    from avrec.data.loaders import load_dataset

    chosen = json.loads((OUT / "privacy-tuning.json").read_text())
    dataset = load_dataset(DATA / name)
    protocol = PROTOCOL[name]
    rows: dict = {"dataset": name, "protocol": protocol, "seed": REPORT_SEED, "curves": {}}
    t0 = time.perf_counter()
    for model in GRID:
        curve = {}
        for eps in EPSILONS:
            settings = chosen[model][str(eps)]["settings"]
            config = {**settings, "epsilon": eps, "noise_seed": REPORT_SEED}
            curve[str(eps)] = ndcg(dataset, protocol, model, config, REPORT_SEED)
            print(f"{name} {model} eps={eps}: {curve[str(eps)]:.4f}", flush=True)
        # no noise: the model on its bounded data (the settings of epsilon = 8)
        settings = chosen[model]["8.0"]["settings"]
        curve["inf"] = ndcg(dataset, protocol, model, {**settings, "epsilon": None}, REPORT_SEED)
        rows["curves"][model] = curve
    for model in ("ease", "popularity"):
        rows["curves"][model] = {"inf": ndcg(dataset, protocol, model, {}, REPORT_SEED)}
        print(f"{name} {model}: {rows['curves'][model]['inf']:.4f}", flush=True)
    rows["wall_s"] = time.perf_counter() - t0
    rows["run_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"privacy-{name}.json").write_text(json.dumps(rows, indent=2))
    return rows


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 3.8), squeeze=False)
    for ax, res in zip(axes[0], results, strict=True):
        for model, color in (("dp-ease", "#4c78a8"), ("dp-popularity", "#f58518")):
            curve = res["curves"][model]
            ax.plot(EPSILONS, [curve[str(e)] for e in EPSILONS], "o-", color=color, label=model)
            ax.axhline(curve["inf"], color=color, ls=":", lw=1, label=f"{model}, no noise")
        for model, color in (("ease", "#333333"), ("popularity", "#9d9d9d")):
            ax.axhline(res["curves"][model]["inf"], color=color, ls="--", lw=1, label=model)
        ax.set_xscale("log", base=2)
        ax.set_xticks(EPSILONS, [str(e) for e in EPSILONS])
        ax.set_xlabel("epsilon (user-level, delta = 1e-5)")
        ax.set_ylabel("NDCG@10")
        ax.set_title(f"{res['dataset']} ({res['protocol']}, seed {res['seed']})")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render() -> str:
    results = [
        json.loads((OUT / f"privacy-{name}.json").read_text())
        for name in PROTOCOL
        if (OUT / f"privacy-{name}.json").is_file()
    ]
    chosen = json.loads((OUT / "privacy-tuning.json").read_text())
    plot(results, ROOT / "docs" / "privacy-curve.png")
    parts = [
        "NDCG@10 against the user-level privacy budget epsilon (delta = min(1e-5, "
        "1/(10 n_users)) = 1e-5 here); settings chosen per epsilon on ml-100k msr seed 1, "
        "reported on seed 0, noise seeded with the split's seed. `inf`: the same model without "
        "noise (bounded data); `ease`/`popularity`: the non-private baselines. Plot: "
        "docs/privacy-curve.png; what it means: docs/privacy.md.\n"
    ]
    for res in results:
        header = "| model | " + " | ".join(f"eps={e:g}" for e in EPSILONS) + " | inf |"
        lines = [
            f"**{res['dataset']}** (`{res['protocol']}`, seed {res['seed']}, run at "
            f"{res['run_at']}, {res['wall_s']:.0f} s)\n",
            header,
            "|---" * (len(EPSILONS) + 2) + "|",
        ]
        for model, curve in res["curves"].items():
            cells = [f"{curve[str(e)]:.4f}" if str(e) in curve else "–" for e in EPSILONS]
            lines.append(f"| {model} | " + " | ".join(cells) + f" | {curve['inf']:.4f} |")
        ease = res["curves"]["ease"]["inf"]
        dp = res["curves"]["dp-ease"]
        pop = res["curves"]["dp-popularity"]
        wins = [e for e in EPSILONS if dp[str(e)] > pop[str(e)]]
        lines.append(
            f"\ndp-ease at eps=8 is {dp['8.0'] / ease:.2f}x non-private ease; dp-ease beats "
            f"dp-popularity at eps {', '.join(f'{e:g}' for e in wins) or 'none'}"
            f" of {', '.join(f'{e:g}' for e in EPSILONS)}.\n"
        )
        parts.append("\n".join(lines))
    tuned = ["| model | eps | settings chosen (seed 1) | NDCG@10 on seed 1 |", "|---|---|---|---|"]
    for model, by_eps in chosen.items():
        for eps, pick in by_eps.items():
            tuned.append(
                f"| {model} | {eps} | `{json.dumps(pick['settings'])}` | {pick['ndcg@10']:.4f} |"
            )
    parts.append(
        "Settings tried per epsilon (seed 1): "
        + "; ".join(
            f"{m}: {len(g)} ({', '.join(sorted({k for s in g for k in s}))})"
            for m, g in GRID.items()
        )
        + ".\n\n"
        + "\n".join(tuned)
    )
    return "\n\n".join(parts)


def run_dp_two_tower(epsilons: list[float]) -> str:
    """NDCG@10 of dp-two-tower on ml-100k msr seed 0 at ``epsilons`` (inf: no noise), with the
    non-private two-tower; saved to reports/benchmarks/privacy-dp-two-tower.json and
    returned as a section."""
    from avrec.data.loaders import load_dataset

    dataset = load_dataset(DATA / "ml-100k")
    path = OUT / "privacy-dp-two-tower.json"
    rows = json.loads(path.read_text()) if path.is_file() else {}
    for eps in epsilons:
        t0 = time.perf_counter()
        budget = None if eps == float("inf") else eps
        config = {**DP_TWO_TOWER, "epsilon": budget, "noise_seed": REPORT_SEED}
        score = ndcg(dataset, "msr", "dp-two-tower", config, REPORT_SEED)
        rows[str(eps)] = {"ndcg@10": score, "fit_s": time.perf_counter() - t0}
        print(f"dp-two-tower eps={eps}: {score:.4f}", flush=True)
    if "two-tower" not in rows:
        t0 = time.perf_counter()
        rows["two-tower"] = {
            "ndcg@10": ndcg(dataset, "msr", "two-tower", {}, REPORT_SEED),
            "fit_s": time.perf_counter() - t0,
        }
    OUT.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2))
    done = sorted((k for k in rows if k != "two-tower"), key=float)
    lines = [
        "dp-two-tower (user-level DP-SGD with Opacus, docs/privacy.md) on ml-100k `msr`, seed "
        f"0, noise seeded with 0; settings `{json.dumps(DP_TWO_TOWER)}` at every epsilon "
        "(chosen on seed 1); delta = 1e-5. `inf`: the same DP-SGD training (Poisson sampling, "
        "clipping) without noise; `two-tower`: the non-private model with its defaults.\n",
        "| model | epsilon | NDCG@10 | evaluation s |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| dp-two-tower | {k} | {rows[k]['ndcg@10']:.4f} | {rows[k]['fit_s']:.0f} |" for k in done
    ]
    tt = rows["two-tower"]
    lines.append(f"| two-tower (not private) | – | {tt['ndcg@10']:.4f} | {tt['fit_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=["tune", "run", "render", "dp-two-tower"])
    parser.add_argument("--datasets", default="ml-100k,ml-latest-small")
    parser.add_argument("--epsilons", default="0.5,1,2,4,8,inf")
    args = parser.parse_args()
    if args.step == "dp-two-tower":
        epsilons = [float(e) for e in args.epsilons.split(",")]
        body = run_dp_two_tower(epsilons)
        write_section(
            "privacy-dp-two-tower",
            "Privacy: dp-two-tower (DP-SGD) against epsilon",
            body,
            "benchmarks/bench_privacy.py dp-two-tower",
        )
    elif args.step == "tune":
        tune()
    elif args.step == "run":
        for name in args.datasets.split(","):
            run(name)
    else:
        write_section(
            "privacy",
            "Privacy: NDCG@10 against epsilon (dp-ease, dp-popularity)",
            render(),
            "benchmarks/bench_privacy.py",
        )


if __name__ == "__main__":
    main()
