"""Write an evaluation report: ``results.json``, a console table and ``index.html`` with plots.

``results.json`` holds only what the data, models, configs and seeds decide, so two runs of
the same evaluation (in-process or on a Dask cluster) write the same bytes; what depends on the
machine and the moment (creation time, machine, fit seconds, peak memory) goes to
``resources.json``."""

from __future__ import annotations

import datetime as dt
import html
import json
import platform
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from avrec import metrics as M
from avrec.cluster import map_chunks
from avrec.evaluation import plots
from avrec.evaluation.runner import ModelRun
from avrec.evaluation.summary import capped_notes, has_ratings, main_metric, significance, summarize
from avrec.rerank.apply import rerank
from avrec.rerank.dpp import similarity_kernel

KNOBS = (0.0, 0.2, 0.4, 0.6, 0.8)
#: re-ranking methods of the trade-off curves (avrec.rerank.apply), and the debias betas
METHODS = ("mmr", "dpp", "calibrated")
BETAS = (0.25, 0.5, 1.0)
#: candidates re-ranked per list (the top of each saved list): keeps the report's curves cheap
POOL = 50
#: summary columns that measure the machine, not the model (kept in resources.json)
RESOURCE_COLUMNS = ("fit_seconds", "peak_mb")


def tradeoff_points(
    runs: Sequence[ModelRun],
    k: int,
    item_vectors: np.ndarray,
    item_genres: np.ndarray | None = None,
) -> pd.DataFrame:
    """Re-ranking of each model's saved lists (seed of the first run; the top :data:`POOL`
    of each list, by the list's scores) with MMR, DPP and calibration at each knob of
    :data:`KNOBS`, and the popularity penalty (debias) at each beta of :data:`BETAS`:
    NDCG@k, diversity@k, the long-tail share (of the run's training popularity) and, where
    ``item_genres`` (genre one-hot) is given, miscalibration@k.
    Columns: model, method, knob, accuracy, diversity, miscalibration, longtail."""
    if not runs:
        return pd.DataFrame()
    first = [run for run in runs if run.seed == runs[0].seed and run.recommendations]
    # one task per model on a Dask cluster (avrec.cluster), in this process otherwise;
    # rows come back in run order, so the curves are the same either way
    parts = map_chunks(_tradeoff_rows, first, k, item_vectors, item_genres)
    return pd.DataFrame([row for part in parts for row in part])


def _tradeoff_rows(
    run: ModelRun, k: int, item_vectors: np.ndarray, item_genres: np.ndarray | None
) -> list[dict]:
    """The trade-off rows of one run (see :func:`tradeoff_points`)."""
    p_gi = M.item_genre_distribution(item_genres) if item_genres is not None else None
    methods = [("none", 0.0, 0.0)] + [(m, d, 0.0) for m in METHODS for d in KNOBS if d > 0]
    rows = []
    popularity = run.item_popularity
    tail = M.long_tail_items(popularity) if popularity is not None else None
    debias = [("none", 0.0, b) for b in BETAS] if popularity is not None else []
    settings = methods + debias
    relevant = _relevant(run)
    users = run.per_user["user_id"].tolist()
    picked: dict[tuple, list[np.ndarray]] = {s: [] for s in settings}
    targets = []
    for n, lst in enumerate(run.recommendations):
        cand = np.asarray(lst[:POOL], dtype=np.int64)
        scores = (
            np.asarray(run.list_scores[n][:POOL], dtype=np.float64)
            if run.list_scores
            else -np.arange(len(cand), dtype=np.float64)  # rank order as relevance
        )
        sim = similarity_kernel(item_vectors[cand])
        history = run.histories[n] if run.histories else np.zeros(0, dtype=np.int64)
        target = M.genre_distribution(history, p_gi) if p_gi is not None else np.zeros(1)
        targets.append(target)
        for kind, knob, beta in settings:
            if kind == "calibrated" and p_gi is None:
                continue
            picked[(kind, knob, beta)].append(
                rerank(
                    cand,
                    scores,
                    k,
                    kind=kind,
                    diversity=knob,
                    debias=beta,
                    item_genres=p_gi,
                    target=target,
                    popularity=popularity,
                    similarity=sim,
                )
            )
    for (kind, knob, beta), lists in picked.items():
        if not lists:
            continue
        kl = [np.nan]
        if p_gi is not None and run.histories:
            kl = [
                M.miscalibration(t, M.genre_distribution(lst, p_gi))
                for t, lst in zip(targets, lists, strict=True)
            ]
        rows.append(
            {
                "model": run.model,
                "method": "debias" if beta > 0 else (kind if knob > 0 else "none"),
                "knob": beta if beta > 0 else knob,
                "accuracy": float(
                    np.mean(
                        [M.ndcg(lst, relevant[u], k) for u, lst in zip(users, lists, strict=True)]
                    )
                ),
                "diversity": float(
                    np.mean([M.intra_list_diversity(lst, item_vectors) for lst in lists])
                ),
                "miscalibration": float(np.mean(kl)),
                "longtail": float(np.mean([M.long_tail_share(lst, tail) for lst in lists]))
                if tail is not None
                else np.nan,
            }
        )
    return rows


def _relevant(run: ModelRun) -> dict[str, set[int]]:
    return run.relevant  # set by attach_relevant


def write_report(
    runs: Sequence[ModelRun],
    out: Path,
    *,
    dataset: str,
    protocol: str,
    ks: Sequence[int],
    item_vectors: np.ndarray | None = None,
    item_popularity: np.ndarray | None = None,
    tradeoff: pd.DataFrame | None = None,
) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    (out / "plots").mkdir(exist_ok=True)
    summary = summarize(runs)
    sig = significance(runs)
    metric, _ = main_metric(runs)
    rating = has_ratings(runs)
    k = min(ks)
    figures = []
    shown = [f"{m}@{k}" for m in ("ndcg", "recall", "hr", "mrr", "map")]
    figures.append(plots.metric_bars(summary, shown, out / "plots" / "metrics.png"))
    if rating:
        rated = summary[summary["rmse"].notna()]
        figures.append(
            plots.metric_bars(
                rated,
                ["mae", "rmse"],
                out / "plots" / "rating.png",
                title="Rating prediction error (lower is better)",
            )
        )
    figures.append(plots.by_activity(runs, f"ndcg@{k}", out / "plots" / "activity.png"))
    if item_popularity is not None:
        figures.append(plots.popularity(runs, item_popularity, k, out / "plots" / "popularity.png"))
    if tradeoff is not None and len(tradeoff):
        figures.append(plots.tradeoff(tradeoff, out / "plots" / "tradeoff.png"))
    per_user = pd.concat(
        [r.per_user.assign(model=r.model, seed=r.seed, split=r.split) for r in runs]
    )
    per_user.to_csv(out / "per_user.csv", index=False, float_format="%.6g")
    result = {
        "dataset": dataset,
        "protocol": protocol,
        "k": list(ks),
        "seeds": sorted({r.seed for r in runs}),
        "main_metric": metric,
        "rating_metric": "rmse" if rating else None,
        "splits": _split_stats(runs),
        "models": json.loads(summary.drop(columns=list(RESOURCE_COLUMNS)).to_json(orient="index")),
        "significance": json.loads(sig.to_json(orient="records")) if len(sig) else [],
        "tradeoff": json.loads(tradeoff.to_json(orient="records")) if tradeoff is not None else [],
        "time_capped": capped_notes(runs),
    }
    resources = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "models": {
            model: {c: float(row[c]) for c in RESOURCE_COLUMNS} for model, row in summary.iterrows()
        },
    }
    (out / "results.json").write_text(json.dumps(result, indent=2))
    (out / "resources.json").write_text(json.dumps(resources, indent=2))
    merged = with_resources(result, resources)
    (out / "index.html").write_text(_html(merged, summary, sig, figures, out))
    return merged


def with_resources(result: dict, resources: dict) -> dict:
    """``results.json`` with ``resources.json`` folded in (creation time, machine, each model's
    fit seconds and peak memory), as :func:`write_report` returns it."""
    merged = {**result, "created": resources["created"], "machine": resources["machine"]}
    merged["models"] = {
        model: {**row, **resources["models"].get(model, {})}
        for model, row in result["models"].items()
    }
    return merged


def _split_stats(runs: Sequence[ModelRun]) -> list[dict]:
    """Test users per (seed, split), from the first model's run on each."""
    seen, out = set(), []
    for r in runs:
        if (r.seed, r.split) not in seen:
            seen.add((r.seed, r.split))
            out.append({"seed": r.seed, "split": r.split, "test_users": len(r.per_user)})
    return out


def columns_for(summary: pd.DataFrame, metric: str, ks: Sequence[int]) -> list[str]:
    k = min(ks)
    cols = ["mae", "rmse"] if "rmse" in summary.columns else []
    cols += [f"{m}@{kk}" for kk in ks for m in ("ndcg", "recall", "hr")]
    cols += [f"ndcg@{kk}+rules" for kk in ks] + [f"rules_changed@{max(ks)}"]
    cols += [
        f"mrr@{k}",
        f"map@{k}",
        f"f1@{k}",
        "auc",
        f"coverage@{k}",
        f"diversity@{k}",
        f"novelty@{k}",
        f"popularity@{k}",
        f"longtail@{k}",
        f"pop_percentile@{k}",
        "history_pop_percentile",
        f"miscalibration@{k}",
        "fit_seconds",
    ]
    return [c for c in cols if c in summary.columns]


def console_table(result: dict, ks: Sequence[int]) -> None:
    from rich.console import Console
    from rich.table import Table

    summary = pd.DataFrame(result["models"]).T
    cols = columns_for(summary, result["main_metric"], ks)
    k = min(ks)  # the console gets the headline columns; HTML has all
    cols = [
        c
        for c in cols
        if c.split("@")[0] in ("ndcg", "recall", "hr", "mrr", "coverage")
        or c in ("fit_seconds", f"diversity@{k}", "mae", "rmse", f"rules_changed@{max(ks)}")
    ]
    table = Table(title=f"{result['dataset']} — {result['protocol']} (seeds {result['seeds']})")
    table.add_column("model")
    for c in cols:
        table.add_column(c, justify="right")
    for model, row in summary.iterrows():
        cells = []
        for c in cols:
            std = row.get(f"{c}_std")
            if pd.isna(row[c]):
                cells.append("–")
                continue
            cells.append(f"{row[c]:.4f}" + (f"±{std:.3f}" if std and std > 0.0005 else ""))
        capped = result.get("time_capped", {}).get(model)
        table.add_row(f"{model} *" if capped else model, *cells)
    console = Console(width=max(120, 17 * (len(cols) + 1)))
    console.print(table)
    for model, notes in result.get("time_capped", {}).items():
        console.print(
            f"* {model}: a wall-clock cap stopped training in {len(notes)} run(s), so "
            f"its figures depend on the machine's speed: {' | '.join(notes)}",
            markup=False,
            highlight=False,
        )


def _cell(row: pd.Series, col: str) -> str:
    """``mean ± 95% interval over users``, and the standard deviation over seeds/folds."""
    if pd.isna(row[col]):
        return "<td>–</td>"
    text = f"{row[col]:.4f}"
    if pd.notna(row.get(f"{col}_ci95")):
        text += f" ± {row[col + '_ci95']:.4f}"
    if col != "fit_seconds" and pd.notna(row.get(f"{col}_std")) and row[f"{col}_std"] > 0:
        text += f"<br><small>sd {row[col + '_std']:.4f}</small>"
    return f"<td>{text}</td>"


def _html(
    result: dict, summary: pd.DataFrame, sig: pd.DataFrame, figures: list[Path], out: Path
) -> str:
    cols = columns_for(summary, result["main_metric"], result["k"])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = ""
    capped = result.get("time_capped", {})
    for model, row in summary.iterrows():
        cells = "".join(_cell(row, c) for c in cols)
        mark = " *" if model in capped else ""
        body += f"<tr><th>{html.escape(str(model))}{mark}</th>{cells}</tr>"
    notes = "".join(
        f"<li>{html.escape(str(model))}: {html.escape(' | '.join(lines))}</li>"
        for model, lines in capped.items()
    )
    capped_html = (
        (
            "<p>* A wall-clock cap stopped training in these models' fits, so their "
            "figures are not those of the configured model and depend on the machine's "
            f"speed:</p><ul>{notes}</ul>"
        )
        if notes
        else ""
    )
    sig_html = (
        sig.to_html(index=False, float_format=lambda v: f"{v:.4g}") if len(sig) else "<p>n/a</p>"
    )
    imgs = "".join(
        f'<figure><img src="{f.relative_to(out)}" alt="{f.stem}"></figure>' for f in figures
    )
    dataset, protocol = html.escape(result["dataset"]), html.escape(result["protocol"])
    machine, metric = html.escape(result["machine"]), html.escape(result["main_metric"])
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>avrec evaluation — {dataset} / {protocol}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px}}img{{max-width:100%}}
</style></head><body>
<h1>Evaluation: {dataset}, protocol <code>{protocol}</code></h1>
<p>Seeds {result["seeds"]}; cut-offs {result["k"]}; created {result["created"]} on {machine}.
Values: mean over test users (and seeds/folds) ± 95% interval over users; "sd": standard deviation
of the per-seed (per-fold) means. Baselines: popularity, itemknn, ease, als (ranking), bias
(rating). Paired tests pair each model's per-user values with the best baseline's, per seed/fold
and user; Holm-adjusted over the models (columns <code>t_holm</code>,
<code>wilcoxon_holm</code>).</p>
<h2>Results</h2><table><tr><th>model</th>{head}</tr>{body}</table>{capped_html}
<h2>Paired significance against the best baseline ({metric})</h2>{sig_html}
<h2>Plots</h2>{imgs}</body></html>"""
