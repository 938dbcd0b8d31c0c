"""Benchmark: the membership-inference audit (``avrec.evaluation.audit``) of private and
non-private models. ml-100k's people are split in two halves (seeded); each model is trained on
one half and audited on everyone: the attack's AUC tells how far its rankings give away who was
in training (0.5: not at all).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_audit.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._report import write_section

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ready"
#: (name, model, config)
MODELS = [
    ("ease", "ease", {}),
    ("ease, l2 = 50 (memorises more)", "ease", {"l2": 50.0}),
    ("itemknn", "itemknn", {}),
    ("popularity", "popularity", {}),
    ("dp-ease, epsilon 8", "dp-ease", {"epsilon": 8.0, "noise_seed": 0}),
    ("two-tower", "two-tower", {}),
    ("dp-two-tower, epsilon 8", "dp-two-tower", {"epsilon": 8.0, "noise_seed": 0}),
    ("dp-ease, epsilon 1", "dp-ease", {"epsilon": 1.0, "noise_seed": 0}),
    ("dp-popularity, epsilon 8", "dp-popularity", {"epsilon": 8.0, "noise_seed": 0}),
]


def main() -> None:
    from avrec.data import Dataset
    from avrec.data.loaders import load_dataset
    from avrec.evaluation.audit import membership_audit
    from avrec.models.base import TrainData
    from avrec.models.registry import create_model

    data = load_dataset(DATA / "ml-100k")
    users = np.array(sorted(data.interactions["user_id"].unique()))
    members = set(np.random.default_rng(0).choice(users, len(users) // 2, replace=False))
    inter = data.interactions[data.interactions["user_id"].isin(members)]
    train = TrainData.from_dataset(Dataset(data.items, inter, name="members"))
    rows = []
    for label, name, config in MODELS:
        model = create_model(name, config).fit(train)
        res = [membership_audit(model, data, seed=s) for s in (0, 1, 2)]
        aucs = [r["auc"] for r in res]
        rows.append(
            f"| {label} | {np.mean(aucs):.3f} ({', '.join(f'{a:.3f}' for a in aucs)}) | "
            f"{res[0]['member_mean_percentile']:.3f} | {res[0]['non_member_mean_percentile']:.3f} |"
        )
        print(rows[-1], flush=True)
    body = "\n".join(
        [
            f"ml-100k, {len(members)} of {len(users)} people (a seeded half) in training; every "
            "person audited (`avrec audit privacy`): one item hidden per person (seeds 0, 1, 2), "
            "its rank percentile among the unseen items is the attack's score. AUC over "
            "members vs non-members (0.5: the attack cannot tell them apart).",
            "",
            "| model | attack AUC (seeds 0, 1, 2) | members' hidden item, mean percentile | "
            "non-members' |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    write_section("audit", "Membership-inference audit", body, "benchmarks/bench_audit.py")


if __name__ == "__main__":
    main()
