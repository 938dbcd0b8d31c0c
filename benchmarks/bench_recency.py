"""Benchmark: the default hybrid's learned recency (models.hybrid.recency) against the same
model with its recency fixed at the config's values (the setting before learning), side by side
in one run, on the splits the issue names: ml-100k ``last`` (target HR@10 >= 0.20 with the
default config), ml-100k ``msr`` seeds 0-2 and ml-latest-small ``random`` seed 0 (no loss).
Writes the "recency" section at the end of docs/benchmarks.md.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_recency.py [--cases ml-100k:last:0,...]

One fit per split: the recency weights only the history at scoring time, so the fixed variant
is the same fitted model scored with the config's ``(mix, tau)`` -- except where a cold-item
ranker was trained on sub-models that used the learned values; then the fixed variant is a
second fit with ``{"recency": {"learn": false}}``. The validation's own cost (the added fit
time) is timed as a separate call of the recency part on the same training data.
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
OUT = ROOT / "reports" / "benchmarks" / "recency.json"
CASES = "ml-100k:last:0,ml-100k:msr:0,ml-100k:msr:1,ml-100k:msr:2,ml-latest-small:random:0"
#: the default hybrid, as bench_models runs it (no request encoder: it does not rank)
CONFIG = {"query_encoder": None}


def run_case(dataset, features, protocol: str, seed: int) -> dict:
    from avrec.evaluation.leakage import isolated
    from avrec.evaluation.protocols import make_splits
    from avrec.evaluation.runner import rank_users
    from avrec.models.base import TrainData
    from avrec.models.hybrid.model import Hybrid
    from avrec.models.hybrid.recency import Recency

    split = make_splits(dataset, protocol, seed)[0]
    train = dataset.with_interactions(split.train)

    def metrics(model) -> dict[str, float]:
        per_user, _, _ = rank_users(model, split, [10], 10, seed)
        return {k: float(per_user[k].mean()) for k in ("ndcg@10", "hr@10")}

    with isolated(dataset, train) as view:
        data = TrainData.from_dataset(train, features)
        data.root = view
        t0 = time.perf_counter()
        model = Hybrid({**CONFIG, "seed": seed}).fit(data)
        fit_s = time.perf_counter() - t0
        part, cfg = model.recency, model.config.recency
        chosen = (part.mix_, part.tau_)
        variants = {"learned": metrics(model)}
        # the validation without the guard on the random items (its time: the added fit time)
        t0 = time.perf_counter()
        unguarded = Recency(cfg.model_copy(update={"keep_random": None}))
        unguarded.fit(data, model.content.vectors, model.config.backbone, seed)
        validation_s = time.perf_counter() - t0
        for label, point in (
            ("fixed", (cfg.mix, cfg.tau)),
            ("next_only", (unguarded.mix_, unguarded.tau_)),
        ):
            if point == chosen:
                variants[label] = variants["learned"]  # the same model
            elif label == "fixed" and model.cold_rank is not None:
                # the cold ranker's sub-models used the learned values: fit the old model
                old = Hybrid({**CONFIG, "seed": seed, "recency": {"learn": False}}).fit(data)
                variants[label] = metrics(old)
            else:
                part.mix_, part.tau_ = point
                variants[label] = metrics(model)
        part.mix_, part.tau_ = chosen
    return {
        "dataset": dataset.root.name,
        "protocol": protocol,
        "seed": seed,
        **variants,
        "chosen": list(chosen),
        "next_only_chosen": [unguarded.mix_, unguarded.tau_],
        "cold_ranker": model.cold_rank is not None,
        "validation": part.validation_,
        "fit_s": fit_s,
        "validation_s": validation_s,
    }


#: the history weightings of the Pareto sweep: (mix, tau) of models.hybrid.recency.decay
GRID = [(0.0, 5.0)] + [
    (m, t) for m in (0.3, 0.6, 0.8, 0.9, 1.0) for t in (1.0, 2.0, 3.0, 5.0, 10.0, 20.0)
]
#: the blends of the sweep: z(no recency) + w * z(history weighted by (1, tau))
BLENDS = [(w, t) for w in (0.25, 0.5, 1.0, 2.0) for t in (2.0, 3.0, 5.0)]


class _Blend:
    """The fitted hybrid's scores from the whole history blended with its scores from the
    recency-weighted history: ``z(mix 0) + w * z((1, tau))``, per row over finite scores."""

    def __init__(self, model, w: float, tau: float):
        self.model, self.w, self.tau = model, w, tau

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def masked_scores(self, users, histories, **kwargs) -> np.ndarray:
        part = self.model.recency
        saved = (part.mix_, part.tau_)
        out = []
        for point in ((0.0, 5.0), (1.0, self.tau)):
            part.mix_, part.tau_ = point
            out.append(self.model.masked_scores(users, histories, **kwargs))
        part.mix_, part.tau_ = saved
        finite = np.isfinite(out[0])
        z = []
        for s in out:
            v = np.where(finite, s, np.nan)
            mu, sd = np.nanmean(v, axis=1, keepdims=True), np.nanstd(v, axis=1, keepdims=True)
            z.append(np.where(finite, (s - mu) / np.maximum(sd, 1e-9), -np.inf))
        return (z[0] + self.w * z[1]).astype(np.float32)


def pareto_case(dataset, features, protocol: str, seed: int) -> list[dict]:
    """One default fit on the split, scored with every weighting of the sweep."""
    from avrec.evaluation.leakage import isolated
    from avrec.evaluation.protocols import make_splits
    from avrec.evaluation.runner import rank_users
    from avrec.models.base import TrainData
    from avrec.models.hybrid.model import Hybrid

    split = make_splits(dataset, protocol, seed)[0]
    train = dataset.with_interactions(split.train)
    out = []
    with isolated(dataset, train) as view:
        data = TrainData.from_dataset(train, features)
        data.root = view
        model = Hybrid({**CONFIG, "seed": seed}).fit(data)
        part = model.recency
        variants = [("weight", p, None) for p in GRID] + [("blend", None, b) for b in BLENDS]
        for kind, point, blend in variants:
            if kind == "weight":
                part.mix_, part.tau_ = point
                scorer = model
            else:
                part.mix_, part.tau_ = 0.0, 5.0
                scorer = _Blend(model, *blend)
            per_user, _, _ = rank_users(scorer, split, [10], 10, seed)
            out.append(
                {
                    "dataset": dataset.root.name,
                    "protocol": protocol,
                    "seed": seed,
                    "kind": kind,
                    "point": list(point or blend),
                    "ndcg@10": float(per_user["ndcg@10"].mean()),
                    "hr@10": float(per_user["hr@10"].mean()),
                }
            )
            print(json.dumps(out[-1]), flush=True)
    return out


def render_pareto(rows: list[dict]) -> str:
    """The sweep's table and plot: `last` HR@10 against `msr` NDCG@10 per weighting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = {(r["protocol"], r["kind"], tuple(r["point"])): r for r in rows}
    pts = sorted({(r["kind"], tuple(r["point"])) for r in rows})
    table = []
    for kind, point in pts:
        last, msr = key.get(("last", kind, point)), key.get(("msr", kind, point))
        if last and msr:
            table.append((kind, point, last["hr@10"], msr["ndcg@10"]))
    base = next(t for t in table if t[0] == "weight" and t[1] == (0.0, 5.0))
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for kind, marker in (("weight", "o"), ("blend", "s")):
        xs = [t[3] for t in table if t[0] == kind]
        ys = [t[2] for t in table if t[0] == kind]
        label = "history weighted by (mix, tau)" if kind == "weight" else "z(all) + w z(recent)"
        ax.scatter(xs, ys, marker=marker, label=label, alpha=0.7)
    ax.axhline(0.20, color="red", lw=0.8, ls="--", label="target: last HR@10 0.20")
    ax.axvline(base[3], color="grey", lw=0.8, ls=":", label="msr NDCG@10 of the default")
    ax.set_xlabel("ml-100k msr NDCG@10 (seed 0)")
    ax.set_ylabel("ml-100k last-by-time HR@10 (seed 0)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "recency-pareto.png", dpi=110)
    both = [t for t in table if t[2] >= 0.20 and t[3] >= base[3] - 1e-9]
    best_last_keep = max((t for t in table if t[3] >= base[3] - 0.005), key=lambda t: t[2])
    best_msr_reach = max((t for t in table if t[2] >= 0.20), key=lambda t: t[3], default=None)
    lines = [
        "The default hybrid (no request encoder) fitted once per split (ml-100k `last` and "
        "`msr`, seed 0) and scored with every history weighting `(mix, tau)` of "
        "models.hybrid.recency and every blend `z(all history) + w z(history weighted by (1, "
        "tau))`: what one setting gives on both protocols. Plot: docs/recency-pareto.png.\n",
        "| kind | point | last HR@10 | msr NDCG@10 |",
        "|---|---|---|---|",
    ]
    for kind, point, hr, nd in table:
        label = (
            f"(mix {point[0]:g}, tau {point[1]:g})"
            if kind == "weight"
            else (f"(w {point[0]:g}, tau {point[1]:g})")
        )
        lines.append(f"| {kind} | {label} | {hr:.4f} | {nd:.4f} |")
    lines.append(
        f"\nNo recency: last HR@10 {base[2]:.4f}, msr NDCG@10 {base[3]:.4f}. Points reaching "
        f"both last HR@10 >= 0.20 and msr NDCG@10 >= the default's: {len(both)} of "
        f"{len(table)}. Best last HR@10 within 0.005 of the default's msr NDCG@10: "
        f"{best_last_keep[2]:.4f} ({best_last_keep[0]} {best_last_keep[1]}); "
        + (
            f"best msr NDCG@10 among points reaching last 0.20: {best_msr_reach[3]:.4f} "
            f"({best_msr_reach[0]} {best_msr_reach[1]})."
            if best_msr_reach
            else "no point reaches last HR@10 0.20."
        )
    )
    return "\n".join(lines)


def _point(point: list) -> str:
    mix, tau = point
    return f"({mix:g}, {'none' if tau is None else f'{tau:g}'})"


VARIANTS = ("learned", "fixed", "next_only")


def render(results: list[dict], note: str) -> str:
    lines = [
        "The default hybrid (no request encoder) with its recency learned by the validation "
        "split by time inside `fit` (`RecencyConfig`, models/hybrid/recency.py), side by side "
        "in one run with the same fitted model scored with (a) the config's fixed `(mix, tau) "
        "= (0, 5)`, the default before (`fixed`), and (b) the point the validation picks "
        "without its guard on the random items, `keep_random: null` (`next only`). `learned`: "
        "the best grid point on each user's latest training item among those that keep the "
        "NDCG@10 of a random earlier item within 1% of no recency, taken only if its gain is "
        "at least 2 standard errors. Target: `last` HR@10 >= 0.20; `msr` / `random` NDCG@10 "
        "no loss. Added fit time: one validation (a second backbone fit on the held-out view "
        "and the grid's scoring), next to the whole fit.\n",
        "| data | protocol | seed | learned (mix, tau) | next only (mix, tau) | "
        "NDCG@10 learned / fixed / next only | HR@10 learned / fixed / next only | "
        "fit (s) | validation (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cells(rs: list[dict], key: str) -> str:
        return " / ".join(f"{np.mean([r[v][key] for r in rs]):.4f}" for v in VARIANTS)

    for r in results:
        lines.append(
            f"| {r['dataset']} | {r['protocol']} | {r['seed']} | {_point(r['chosen'])} | "
            f"{_point(r['next_only_chosen'])} | {cells([r], 'ndcg@10')} | "
            f"{cells([r], 'hr@10')} | {r['fit_s']:.1f} | {r['validation_s']:.1f} |"
        )
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        groups.setdefault((r["dataset"], r["protocol"]), []).append(r)
    for (name, protocol), rs in groups.items():
        if len(rs) > 1:
            lines.append(
                f"| {name} | {protocol} | mean | | | {cells(rs, 'ndcg@10')} | "
                f"{cells(rs, 'hr@10')} | | |"
            )
    lines.append("\nThe validation's table per split (NDCG@10 on the next / the random item):\n")
    for r in results:
        table = ", ".join(
            f"{_point([v['mix'], v['tau']])}: {v['next_ndcg']:.4f} / {v['random_ndcg']:.4f}"
            for v in r["validation"]
        )
        lines.append(f"- {r['dataset']} {r['protocol']} seed {r['seed']}: {table or '–'}")
    return "\n".join(lines) + ("\n\n" + note if note else "")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=CASES, help="dataset:protocol:seed, comma-separated")
    ap.add_argument("--note", default="", help="a paragraph added under the table")
    ap.add_argument("--render", action="store_true", help="only rewrite the section")
    ap.add_argument(
        "--pareto", action="store_true", help="the sweep of weightings on ml-100k last and msr"
    )
    args = ap.parse_args()
    if args.pareto:
        return pareto(args.render)
    from avrec.data.loaders import load_dataset
    from avrec.fusion.features import item_features

    results = json.loads(OUT.read_text()) if args.render else []
    if not args.render:
        loaded: dict[str, tuple] = {}
        for case in args.cases.split(","):
            name, protocol, seed = case.split(":")
            if name not in loaded:
                ds = load_dataset(DATA / name)
                loaded[name] = (ds, item_features(ds))
            r = run_case(*loaded[name], protocol, int(seed))
            print(json.dumps({k: v for k, v in r.items() if k != "validation"}), flush=True)
            results.append(r)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(results, indent=2))
    write_section(
        "recency",
        "Recency learned by a validation split by time",
        render(results, args.note),
        "benchmarks/bench_recency.py",
    )


def pareto(render_only: bool) -> None:
    from avrec.data.loaders import load_dataset
    from avrec.fusion.features import item_features

    out = OUT.with_name("recency_pareto.json")
    if render_only:
        rows = json.loads(out.read_text())
    else:
        ds = load_dataset(DATA / "ml-100k")
        feats = item_features(ds)
        rows = pareto_case(ds, feats, "last", 0) + pareto_case(ds, feats, "msr", 0)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=2))
    write_section(
        "recency-pareto",
        "Recency: one setting on both protocols (the ceiling of #32's last-by-time target)",
        render_pareto(rows),
        "benchmarks/bench_recency.py --pareto",
    )


if __name__ == "__main__":
    main()
