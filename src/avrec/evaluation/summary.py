"""Summaries of runs: mean, spread over seeds, 95% intervals, paired tests against the best
baseline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from avrec.evaluation.runner import RANKING_BASELINES, RATING_BASELINES, ModelRun


def summarize(runs: Sequence[ModelRun]) -> pd.DataFrame:
    """One row per model: each metric's mean over seeds, its std over seeds, and a 95% interval
    half-width over users (pooled over seeds)."""
    rows = []
    for model in dict.fromkeys(r.model for r in runs):
        mine = [r for r in runs if r.model == model]
        row = {"model": model, "fit_seconds": float(np.mean([r.fit_seconds for r in mine])),
               "peak_mb": float(np.max([r.peak_mb for r in mine]))}
        for metric in mine[0].metrics:
            per_seed = [r.metrics[metric] for r in mine]
            row[metric] = float(np.mean(per_seed))
            row[f"{metric}_std"] = float(np.std(per_seed))
        pooled = pd.concat([r.per_user for r in mine])
        for col in pooled.columns:
            if col in ("user_id", "train_size"):
                continue
            v = pooled[col].dropna().to_numpy(float)
            row[f"{col}_ci95"] = float(1.96 * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def main_metric(runs: Sequence[ModelRun]) -> tuple[str, bool]:
    """(metric, higher_is_better) used to pick the best baseline."""
    metrics = runs[0].metrics
    if "rmse" in metrics:
        return "rmse", False
    k = min(int(m.split("@")[1]) for m in metrics if m.startswith("ndcg@"))
    return f"ndcg@{k}", True


def _per_user(runs: Sequence[ModelRun], model: str, column: str) -> pd.Series:
    parts = []
    for r in runs:
        if r.model == model:
            col = column if column in r.per_user else "sq_error"
            parts.append(r.per_user.assign(_key=r.split + "/" + str(r.seed))
                         .groupby(["_key", "user_id"])[col].mean())
    return pd.concat(parts)


def significance(runs: Sequence[ModelRun]) -> pd.DataFrame:
    """Paired tests of each model against the best baseline on the main metric, paired by
    (split, seed, user): t-test and Wilcoxon signed-rank."""
    metric, higher = main_metric(runs)
    summary = summarize(runs)
    baselines = [m for m in summary.index if m in (*RANKING_BASELINES, *RATING_BASELINES)]
    if not baselines:
        return pd.DataFrame()
    best = (summary.loc[baselines, metric].idxmax() if higher
            else summary.loc[baselines, metric].idxmin())
    column = metric if metric != "rmse" else "sq_error"
    ref = _per_user(runs, best, column)
    rows = []
    for model in summary.index:
        if model == best:
            continue
        other = _per_user(runs, model, column)
        a, b = other.align(ref, join="inner")
        t = stats.ttest_rel(a, b) if len(a) > 1 else None
        diff = a - b
        w = stats.wilcoxon(diff) if len(a) > 1 and (diff != 0).any() else None
        rows.append({"model": model, "baseline": best, "metric": metric,
                     "difference": float(summary.loc[model, metric] - summary.loc[best, metric]),
                     "t_pvalue": float(t.pvalue) if t is not None else float("nan"),
                     "wilcoxon_pvalue": float(w.pvalue) if w is not None else float("nan"),
                     "pairs": int(len(a))})
    return pd.DataFrame(rows)
