"""Report figures, rendered to PNG files with matplotlib (Agg backend, viewable offline)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from avrec.evaluation.runner import ModelRun

#: drawn grey in the bar charts
BASELINES = ("popularity", "itemknn", "ease", "als", "bias")
ACTIVITY_BUCKETS = [0, 10, 25, 50, 100, 200, 10**9]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def metric_bars(
    summary: pd.DataFrame,
    metrics: Sequence[str],
    path: Path,
    title: str = "Mean over test users and seeds; error bars: 95% interval",
) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        err = summary.get(f"{metric}_ci95", pd.Series(0, index=summary.index))
        colors = ["#9d9d9d" if m in BASELINES else "#4c78a8" for m in summary.index]
        ax.bar(summary.index, summary[metric], yerr=err.fillna(0), capsize=3, color=colors)
        ax.set_title(metric)
        ax.tick_params(axis="x", rotation=60)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def by_activity(runs: Sequence[ModelRun], metric: str, path: Path) -> Path:
    plt = _plt()
    labels = [
        f"{a + 1}-{b}" if b < 10**9 else f">{a}" for a, b in itertools.pairwise(ACTIVITY_BUCKETS)
    ]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    counts = None
    for model in dict.fromkeys(r.model for r in runs):
        frame = pd.concat([r.per_user for r in runs if r.model == model])
        bucket = pd.cut(frame["train_size"], ACTIVITY_BUCKETS, labels=labels)
        means = frame.groupby(bucket, observed=False)[metric].mean()
        ax.plot(labels, means.reindex(labels).to_numpy(), marker="o", label=model)
        if counts is None:
            counts = bucket.value_counts().reindex(labels).fillna(0).astype(int)
    if counts is not None:  # how many (seed, user) values each point averages
        ax.set_xticks(range(len(labels)), [f"{lab}\n(n={counts[lab]})" for lab in labels])
    ax.set_xlabel("user's training interactions")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} by user activity")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def popularity(runs: Sequence[ModelRun], item_popularity: np.ndarray, k: int, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bins = np.linspace(0, np.log10(item_popularity.max() + 1) + 0.1, 30)
    ax.hist(
        np.log10(item_popularity + 1),
        bins=bins,
        density=True,
        histtype="stepfilled",
        alpha=0.3,
        color="grey",
        label="catalog",
    )
    for model in dict.fromkeys(r.model for r in runs):
        recs = np.concatenate(
            [lst[:k] for r in runs if r.model == model for lst in r.recommendations]
        )
        if len(recs):
            ax.hist(
                np.log10(item_popularity[recs] + 1),
                bins=bins,
                density=True,
                histtype="step",
                label=model,
            )
    ax.set_xlabel("log10(1 + item's interactions in the dataset)")
    ax.set_title(f"Popularity of recommended items (top {k}) vs the catalog")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def tradeoff(points: pd.DataFrame, path: Path) -> Path:
    """``points``: columns model, method (none, mmr, dpp, calibrated, debias), knob, accuracy,
    diversity, longtail (``evaluation.report.tradeoff_points``). Left: accuracy against
    diversity, one line per model and re-ranking method from the plain list; right: accuracy
    against the long-tail share under the popularity penalty."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    means = points.groupby(["model", "method", "knob"], sort=False, as_index=False).mean(
        numeric_only=True
    )
    styles = {"mmr": "-", "dpp": "--", "calibrated": ":", "debias": "-"}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for n, (model, grp) in enumerate(means.groupby("model", sort=False)):
        color = colors[n % len(colors)]
        plain = grp[grp["method"] == "none"]
        for method, style in styles.items():
            line = pd.concat([plain, grp[grp["method"] == method]])
            if len(line) < 2:
                continue
            ax, x = (right, "longtail") if method == "debias" else (left, "diversity")
            ax.plot(
                line[x],
                line["accuracy"],
                style,
                marker="o",
                ms=3,
                color=color,
                label=f"{model} {method}",
            )
    left.set_xlabel("intra-list diversity (content distance)")
    left.set_ylabel("accuracy (NDCG)")
    left.set_title("Accuracy-diversity: MMR (solid), DPP (dashed), calibrated (dotted)")
    right.set_xlabel("long-tail share of the list")
    right.set_title("Popularity penalty (debias beta)")
    for ax in (left, right):
        ax.title.set_fontsize(9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
