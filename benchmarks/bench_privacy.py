"""Benchmark: NDCG@10 of the user-level differentially private models against the privacy
budget epsilon.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_privacy.py tune   # dp-popularity, ml-100k seed 1
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_privacy.py run [--datasets ml-100k,...]
    python benchmarks/bench_privacy.py render   # the MovieLens sets: privacy-curve.png + section
    python benchmarks/bench_privacy.py render-synthetic   # the synthetic catalogs' own
    OMP_NUM_THREADS=1 python benchmarks/bench_privacy.py dp-two-tower [--epsilons 1,8]

Datasets: ml-100k (``msr``), ml-latest-small (``random``), both through the evaluation harness
(``avrec.evaluation.runner.evaluate``), and ``synthetic-100k``: 100,000 users and 5,000 items
from latent tastes with a popularity long tail (``synthetic_catalog.taste_interactions``),
split by the harness's ``random`` protocol (20% of each user's items held out) and ranked by
its ``rank_users`` for a seeded sample of 10,000 test users (all 100,000 take the harness
about ten minutes a model).

``dp-ease`` runs with its defaults at every epsilon and on every dataset (no per-epsilon or
per-dataset settings: what the model chooses, it chooses from the config, epsilon, delta and
the number of users). ``dp-popularity`` gets the cap per epsilon that ``tune`` chose on
ml-100k ``msr`` seed 1 (``reports/benchmarks/privacy-tuning.json``; the choice recorded in
docs/benchmarks.md where that file is absent). Everything is reported on seed 0 with the
noise seeded by it, with the non-private ``ease`` and ``popularity`` and each private model
without noise (``inf``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._report import write_section

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AVREC_SHARED_DATA", ROOT.parent / "shared" / "data")) / "ready"
OUT = ROOT / "reports" / "benchmarks"
EPSILONS = [0.5, 1.0, 2.0, 4.0, 8.0]
PROTOCOL = {
    "ml-100k": "msr",
    "ml-latest-small": "random",
    "synthetic-100k": "random",
    "synthetic-100k-t4": "random",
}
#: the synthetic catalogs' generator settings (synthetic_catalog.taste_interactions): the first
#: one as first run; ``-t4`` with the taste signal calibrated to MovieLens (EASE 1.99x
#: popularity at taste_scale 4 on seed 2, against 1.90x / 1.94x on ml-100k / ml-latest-small)
SYNTHETIC = {"synthetic-100k": {}, "synthetic-100k-t4": {"taste_scale": 4.0}}
TUNE_SEED, REPORT_SEED = 1, 0
SYNTHETIC_TEST_USERS = 10_000
#: settings tried per epsilon on the tuning split (models not here run with their defaults)
GRID = {"dp-popularity": [{"max_items_per_user": k} for k in (5, 20, 100, 1000)]}
#: tune's choice on ml-100k msr seed 1 (docs/benchmarks.md, 2026-12-07), used without its file
TUNED = {"dp-popularity": {"0.5": 100, "1.0": 100, "2.0": 100, "4.0": 100, "8.0": 1000}}
PRIVATE = ["dp-ease", "dp-popularity"]
BASELINES = ["ease", "popularity"]

Score = Callable[[str, dict], float]

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


def settings(model: str, eps: float | None) -> dict:
    """The settings of ``model`` at ``eps`` (None: no noise, the settings of epsilon 8)."""
    if model not in GRID:
        return {}
    key = str(eps if eps is not None else 8.0)
    path = OUT / "privacy-tuning.json"
    if path.is_file():
        return json.loads(path.read_text())[model][key]["settings"]
    return {"max_items_per_user": TUNED[model][key]}


def prepare(name: str, log: dict) -> tuple[Score, Callable[[float], dict]]:
    """The scorer of ``name`` (model, config -> NDCG@10 on seed 0) and what dp-ease chose at
    an epsilon on its split's training data (:func:`dp_ease_record`)."""
    import numpy as np

    from avrec.evaluation.protocols import make_splits
    from avrec.models.base import TrainData

    if name not in SYNTHETIC:
        from avrec.data.loaders import load_dataset

        dataset = load_dataset(DATA / name)
        split = make_splits(dataset, PROTOCOL[name], REPORT_SEED)[0]
        data = TrainData.from_dataset(dataset.with_interactions(split.train))
        return (
            lambda model, config: ndcg(dataset, PROTOCOL[name], model, config, REPORT_SEED)
        ), lambda eps: dp_ease_record(fit_dp_ease(data, eps))
    from avrec.evaluation.runner import rank_users
    from avrec.models.registry import create_model
    from benchmarks.synthetic_catalog import taste_dataset, taste_interactions

    matrix = taste_interactions(**SYNTHETIC[name])
    dataset = taste_dataset(matrix)
    split = make_splits(dataset, "random", REPORT_SEED)[0]
    users = split.test["user_id"].unique()
    sample = np.random.default_rng(REPORT_SEED).choice(users, SYNTHETIC_TEST_USERS, False)
    split.test = split.test[split.test["user_id"].isin(set(sample))]
    data = TrainData.from_dataset(dataset.with_interactions(split.train))
    log.update(
        generator=SYNTHETIC[name],
        users=int(matrix.shape[0]),
        items=int(matrix.shape[1]),
        interactions=int(matrix.nnz),
        train=len(split.train),
        test_users=len(sample),
    )

    records: dict = {}

    def score(model: str, config: dict) -> float:
        fitted = create_model(model, {"seed": REPORT_SEED, **config}).fit(data)
        if model == "dp-ease":  # the same fit as fit_dp_ease's, kept instead of repeated
            records[config["epsilon"]] = fitted.privacy()
        per_user, _, _ = rank_users(fitted, split, [10], 10, REPORT_SEED)
        return float(per_user["ndcg@10"].mean())

    return score, lambda eps: dp_ease_record(records[eps])


def fit_dp_ease(data, eps: float) -> dict:
    """The privacy record of dp-ease fitted at ``eps`` as the benchmark fits it."""
    from avrec.models.registry import create_model

    config = {"seed": REPORT_SEED, "epsilon": eps, "noise_seed": REPORT_SEED}
    return create_model("dp-ease", config).fit(data).privacy() or {}


def dp_ease_record(record: dict) -> dict:
    """What dp-ease chose: its noise and post-processing (``privacy``'s record)."""
    return {
        "n_users": record["n_users"],
        "noise_std": record["noise_std"],
        "count_noise_std": record["count_noise_std"],
        **record["post_processing"],
    }


def run(name: str) -> dict:
    rows: dict = {"dataset": name, "protocol": PROTOCOL[name], "seed": REPORT_SEED, "curves": {}}
    t0 = time.perf_counter()
    rows["data"] = {}
    score, record = prepare(name, rows["data"])
    for model in PRIVATE:
        curve = {}
        for eps in [*EPSILONS, None]:
            config = {**settings(model, eps), "epsilon": eps, "noise_seed": REPORT_SEED}
            key = str(eps) if eps is not None else "inf"
            curve[key] = score(model, config)
            print(f"{name} {model} eps={key}: {curve[key]:.4f}", flush=True)
        rows["curves"][model] = curve
    for model in BASELINES:
        rows["curves"][model] = {"inf": score(model, {})}
        print(f"{name} {model}: {rows['curves'][model]['inf']:.4f}", flush=True)
    rows["wall_s"] = time.perf_counter() - t0
    rows["run_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows["dp_ease"] = {str(eps): record(eps) for eps in EPSILONS}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"privacy-{name}.json").write_text(json.dumps(rows, indent=2))
    return rows


def run_variant(name: str, label: str, config: dict, epsilons: list[float | None]) -> dict:
    """dp-ease with ``config`` on top of its defaults at ``epsilons`` on ``name`` (seed 0),
    added to the dataset's saved results as the curve ``dp-ease (label)`` (without a saved
    curve run, to ``privacy-NAME-variants.json``)."""
    path = OUT / f"privacy-{name}.json"
    if not path.is_file():  # no curve run here: kept apart, not rendered
        path = OUT / f"privacy-{name}-variants.json"
    rows = json.loads(path.read_text()) if path.is_file() else {"curves": {}}
    score, _ = prepare(name, {})
    curve = rows["curves"].setdefault(f"dp-ease ({label})", {})
    for eps in epsilons:
        key = str(eps) if eps is not None else "inf"
        curve[key] = score("dp-ease", {**config, "epsilon": eps, "noise_seed": REPORT_SEED})
        print(f"{name} dp-ease ({label}) eps={key}: {curve[key]:.4f}", flush=True)
    rows.setdefault("variants", {})[label] = config
    path.write_text(json.dumps(rows, indent=2))
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
        ax.set_xlabel("epsilon (user-level, delta = min(1e-5, 1/(10 n_users)))")
        ax.set_ylabel("NDCG@10")
        ax.set_title(f"{res['dataset']} ({res['protocol']}, seed {res['seed']})")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(names: list[str], plot_to: str = "privacy-curve.png") -> str:
    results = [
        json.loads((OUT / f"privacy-{name}.json").read_text())
        for name in names
        if (OUT / f"privacy-{name}.json").is_file()
    ]
    plot(results, ROOT / "docs" / plot_to)
    pop = {k: settings("dp-popularity", float(k))["max_items_per_user"] for k in map(str, EPSILONS)}
    parts = [
        "NDCG@10 against the user-level privacy budget epsilon (delta = min(1e-5, "
        "1/(10 n_users)): 1e-5 on the MovieLens sets, 1e-6 on the synthetic one), seed 0, noise "
        "seeded with it. `dp-ease` runs with its defaults everywhere (one setting for every "
        "epsilon and dataset; what it adapts, it adapts from epsilon, delta and the number of "
        "users); `dp-popularity` with the per-user cap `tune` chose per epsilon on ml-100k msr "
        f"seed 1 ({', '.join(f'eps={float(k):g}: {v}' for k, v in pop.items())}). `inf`: the "
        "same model without noise; `ease`/`popularity`: the non-private baselines. Plot: "
        f"docs/{plot_to}; what it means: docs/privacy.md.\n"
    ]
    for res in results:
        header = "| model | " + " | ".join(f"eps={e:g}" for e in EPSILONS) + " | inf |"
        about = res.get("data") or {}
        extra = (
            f"; {about['users']:,} users, {about['items']:,} items, "
            f"{about['interactions']:,} interactions, NDCG over {about['test_users']:,} "
            f"sampled test users; generator {json.dumps(about.get('generator', {}))}"
            if about
            else ""
        )
        lines = [
            f"**{res['dataset']}** (`{res['protocol']}`, seed {res['seed']}, run at "
            f"{res['run_at']}, {res['wall_s']:.0f} s{extra})\n",
            header,
            "|---" * (len(EPSILONS) + 2) + "|",
        ]
        for model, curve in res["curves"].items():
            cells = [f"{curve[str(e)]:.4f}" if str(e) in curve else "–" for e in EPSILONS]
            inf = f"{curve['inf']:.4f}" if "inf" in curve else "–"
            lines.append(f"| {model} | " + " | ".join(cells) + f" | {inf} |")
        ease = res["curves"]["ease"]["inf"]
        dp = res["curves"]["dp-ease"]
        dpop = res["curves"]["dp-popularity"]
        wins = [e for e in EPSILONS if dp[str(e)] > dpop[str(e)]]
        lines.append(
            f"\ndp-ease at eps=8: {dp['8.0'] / ease:.2f}x non-private ease, "
            f"{dp['8.0'] / dp['inf']:.2f}x dp-ease without noise; dp-ease beats dp-popularity "
            f"at eps {', '.join(f'{e:g}' for e in wins) or 'none'} of "
            f"{', '.join(f'{e:g}' for e in EPSILONS)} (by "
            + ", ".join(f"{dp[str(e)] / dpop[str(e)]:.2f}x" for e in EPSILONS)
            + ")."
        )
        for model, curve in res["curves"].items():
            if model.startswith("dp-ease (") and "8.0" in curve:
                lines.append(
                    f"{model} (settings {json.dumps(res['variants'][model[9:-1]])}, chosen "
                    f"on seed 1 at eps=8) at eps=8: {curve['8.0'] / dp['inf']:.3f}x dp-ease "
                    f"without noise, {curve['8.0'] / ease:.3f}x non-private ease."
                )
        lines.append("")
        lines += [
            "| eps | count share | Gram items | chosen by | eigenvalues kept | Gram noise std | "
            "count noise std |",
            "|---|---|---|---|---|---|---|",
        ]
        for eps, rec in res.get("dp_ease", {}).items():
            # the full-rank block where it was used, else gram_snr's low-rank estimate
            rule = "full-rank block" if rec.get("full_rank_block") else "gram_snr (low rank)"
            lines.append(
                f"| {float(eps):g} | {rec['count_share']:.2f} | {rec['gram_items']:,} | {rule} | "
                f"{rec['signal_rank']} | {rec['noise_std']:.2f} | {rec['count_noise_std']:.2f} |"
            )
        parts.append("\n".join(lines))
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
    parser.add_argument(
        "step",
        choices=["tune", "run", "render", "render-synthetic", "dp-two-tower", "variant"],
    )
    parser.add_argument("--label", default="variant")
    parser.add_argument("--config", default="{}", help="dp-ease settings (JSON), for variant")
    parser.add_argument("--datasets", default=",".join(PROTOCOL))
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
    elif args.step == "variant":  # dp-ease with other settings, on the reported split
        epsilons = [None if e == "inf" else float(e) for e in args.epsilons.split(",")]
        for name in args.datasets.split(","):
            run_variant(name, args.label, json.loads(args.config), epsilons)
    elif args.step == "tune":
        tune()
    elif args.step == "run":
        for name in args.datasets.split(","):
            run(name)
    elif args.step == "render-synthetic":  # the synthetic catalogs alone, in their section
        write_section(
            "privacy-synthetic",
            "Privacy: the DP backbone on the synthetic 100k-user catalogs (issue #34)",
            render(list(SYNTHETIC), "privacy-curve-synthetic.png"),
            "benchmarks/bench_privacy.py run --datasets synthetic-100k,synthetic-100k-t4",
        )
    else:
        write_section(
            "privacy-curve",
            "Privacy: the DP backbone's curve (dp-ease against dp-popularity, issue #34)",
            render([name for name in PROTOCOL if name not in SYNTHETIC]),
            "benchmarks/bench_privacy.py",
        )


if __name__ == "__main__":
    main()
