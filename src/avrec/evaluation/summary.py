"""Summaries of runs: mean, spread over seeds, 95% intervals, paired tests against the best
baseline (per-user values, paired by split, seed and user; Holm-corrected over the models)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from avrec.evaluation.runner import RANKING_BASELINES, RATING_BASELINES, ModelRun

NOT_METRICS = ("user_id", "train_size")


def summarize(runs: Sequence[ModelRun]) -> pd.DataFrame:
    """One row per model: each metric's mean over seeds (and folds), its std over them
    (``_std``), a 95% interval half-width over users pooled over seeds (``_ci95``; for
    MAE/RMSE over test interactions), and ``time_capped_runs``: how many of its fits a
    wall-clock cap stopped (:func:`capped_notes`)."""
    rows = []
    for model in dict.fromkeys(r.model for r in runs):
        mine = [r for r in runs if r.model == model]
        row = {
            "model": model,
            "fit_seconds": float(np.mean([r.fit_seconds for r in mine])),
            "peak_mb": float(np.max([r.peak_mb for r in mine])),
            "time_capped_runs": sum(1 for r in mine if r.time_capped),
        }
        for metric in dict.fromkeys(m for r in mine for m in r.metrics):
            per_seed = [r.metrics[metric] for r in mine if metric in r.metrics]
            row[metric] = float(np.mean(per_seed))
            row[f"{metric}_std"] = float(np.std(per_seed))
        pooled = pd.concat([r.per_user for r in mine])
        for col in pooled.columns:
            if col not in NOT_METRICS:
                row[f"{col}_ci95"] = _half_width(pooled[col].dropna().to_numpy(float))
        errors = [r.errors for r in mine if r.errors is not None]
        if errors:
            err = pd.concat(errors)
            row["mae_ci95"] = _half_width(err["abs_error"].to_numpy(float))
            rmse = float(np.sqrt(err["sq_error"].mean()))
            # delta method: sd(sqrt(m)) ~ sd(m) / (2 sqrt(m))
            row["rmse_ci95"] = (
                _half_width(err["sq_error"].to_numpy(float)) / (2 * rmse) if rmse else 0.0
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def capped_notes(runs: Sequence[ModelRun]) -> dict[str, list[str]]:
    """Model -> one line per run whose fit a wall-clock cap stopped (seed, split, what
    stopped); models without such runs are left out. Their figures are not those of the
    model their config describes, and depend on the machine's speed."""
    out: dict[str, list[str]] = {}
    for r in runs:
        if r.time_capped:
            out.setdefault(r.model, []).append(
                f"seed {r.seed}, {r.split}: {'; '.join(r.time_capped)}"
            )
    return out


def _half_width(v: np.ndarray) -> float:
    return float(1.96 * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def main_metric(runs: Sequence[ModelRun]) -> tuple[str, bool]:
    """(metric, higher_is_better) of the headline ranking metric: NDCG at the smallest k."""
    metrics = runs[0].metrics
    k = min(int(m.split("@")[1]) for m in metrics if re.fullmatch(r"ndcg@\d+", m))
    return f"ndcg@{k}", True


def has_ratings(runs: Sequence[ModelRun]) -> bool:
    return any(r.errors is not None for r in runs)


def _per_user(runs: Sequence[ModelRun], model: str, column: str) -> pd.Series:
    parts = []
    for r in runs:
        if r.model != model:
            continue
        frame = r.errors if column in ("sq_error", "abs_error") else r.per_user
        if frame is None:
            continue
        parts.append(
            frame.assign(_key=r.split + "/" + str(r.seed))
            .groupby(["_key", "user_id"])[column]
            .mean()
        )
    return pd.concat(parts) if parts else pd.Series(dtype=float)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN)."""
    p = np.asarray(pvalues, float)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok])]
    m, running = len(order), 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out.tolist()


def _tests(
    runs: Sequence[ModelRun],
    summary: pd.DataFrame,
    metric: str,
    higher: bool,
    baselines: Sequence[str],
    column: str,
) -> list[dict]:
    candidates = [
        m for m in summary.index if m in baselines and pd.notna(summary.loc[m].get(metric))
    ]
    if not candidates:
        return []
    values = summary.loc[candidates, metric]
    best = values.idxmax() if higher else values.idxmin()
    ref = _per_user(runs, best, column)
    rows = []
    for model in summary.index:
        if model == best or pd.isna(summary.loc[model].get(metric)):
            continue
        a, b = _per_user(runs, model, column).align(ref, join="inner")
        diff = (a - b).to_numpy()
        t = stats.ttest_rel(a, b) if len(a) > 1 and np.std(diff) > 0 else None
        w = stats.wilcoxon(diff) if len(a) > 1 and (diff != 0).any() else None
        rows.append(
            {
                "model": model,
                "baseline": best,
                "metric": metric,
                "difference": float(summary.loc[model, metric] - summary.loc[best, metric]),
                "per_user_difference": float(diff.mean()) if len(diff) else float("nan"),
                "t_pvalue": float(t.pvalue) if t is not None else float("nan"),
                "wilcoxon_pvalue": float(w.pvalue) if w is not None else float("nan"),
                "pairs": len(a),
            }
        )
    for key in ("t_pvalue", "wilcoxon_pvalue"):
        for row, adj in zip(rows, holm([r[key] for r in rows]), strict=True):
            row[key.replace("_pvalue", "_holm")] = adj
    return rows


def significance(runs: Sequence[ModelRun]) -> pd.DataFrame:
    """Paired tests of each model against the best baseline, paired by (split, seed, user):
    t-test and Wilcoxon signed-rank, with Holm-adjusted p-values. Ranking: the headline NDCG
    against the best of popularity/item-kNN/EASE/ALS; rating (``kfold``): per-user mean absolute
    and squared errors against the best rating baseline (by MAE and by RMSE)."""
    summary = summarize(runs)
    metric, higher = main_metric(runs)
    rows = _tests(runs, summary, metric, higher, RANKING_BASELINES, metric)
    if has_ratings(runs):
        rows += _tests(runs, summary, "mae", False, RATING_BASELINES, "abs_error")
        rows += _tests(runs, summary, "rmse", False, RATING_BASELINES, "sq_error")
    return pd.DataFrame(rows)
