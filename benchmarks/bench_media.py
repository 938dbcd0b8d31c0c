"""Media in the two-tower's item tower: ml-100k posters, and a catalog where only the pictures
differ. Regenerates the "media" section of docs/benchmarks.md.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_media.py [--seeds 0,1,2] [--reuse]

- ml-100k (`cold-items` and `msr`, the protocols of the models section): the two-tower with
  the text and genre vectors only (as in the models section), with the EfficientNet-Lite0
  poster vectors always in the item tower (`media="on"`), and with the choice made in
  training (`media="auto"`, the default when the data has media: two short trainings with a
  tenth of the items hidden decide). The posters are encoded first (cached by content hash;
  about 35 s for 1,618 posters when the cache is empty).
- a generated catalog (tests/slow/test_models_media.py: 32 items whose titles are neutral
  names, half checkerboard thumbnails, half colour gradients; 40 users who each like one
  kind; 10 items without interactions): the share of each user's own kind among the top 3 of
  the cold items, with and without the image vectors.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ready" / "ml-100k"
SAVED = ROOT / "reports" / "benchmarks" / "media-ml-100k.json"
VARIANTS = {
    "two-tower, text + genres": None,
    "two-tower, + posters always (media=on)": "on",
    "two-tower, + posters if they help (media=auto)": "auto",
}


def ml100k(seeds: list[int]) -> tuple[list[str], dict]:
    from avrec.data.loaders import load_dataset
    from avrec.encoders.understand import encode_catalog
    from avrec.evaluation.runner import evaluate
    from avrec.fusion.features import item_features
    from avrec.models.neural import two_tower

    dataset = load_dataset(DATA)
    posters = encode_catalog(dataset, ("image",)).results["image"]
    base = item_features(dataset)
    with_posters = {**base, "image": posters.vectors * posters.present[:, None]}
    choices: list[tuple[bool, dict | None, float]] = []
    original = two_tower.TwoTower._train

    def watched(self, data):
        t0 = time.perf_counter()
        original(self, data)
        choices.append((self.media_used, self.media_probe, time.perf_counter() - t0))

    two_tower.TwoTower._train = watched
    rows, raw = [], {}
    try:
        for protocol in ("cold-items", "msr"):
            for label, media in VARIANTS.items():
                choices.clear()
                runs = evaluate(
                    dataset,
                    protocol,
                    ["two-tower"],
                    ks=(10,),
                    seeds=seeds,
                    configs={"two-tower": {"media": media or "off"}},
                    item_features=base if media is None else with_posters,
                    log=lambda s: None,
                )
                v = [r.metrics["ndcg@10"] for r in runs if r.model == "two-tower"]
                used = sum(c[0] for c in choices)
                fit = float(np.median([c[2] for c in choices]))
                probes = "; ".join(f"{p[True]:.3f} vs {p[False]:.3f}" for _, p, _ in choices if p)
                raw[(protocol, label)] = v
                rows.append(
                    f"| {protocol} | {label} | {np.mean(v):.4f} "
                    f"({', '.join(f'{x:.4f}' for x in v)}) "
                    f"| {used}/{len(choices)} | {probes or '–'} | {fit:.0f} |"
                )
                print(rows[-1], flush=True)
    finally:
        two_tower.TwoTower._train = original
    for label, features in (
        ("hybrid, text + genres", base),
        ("hybrid, + posters (cold-item ranker)", with_posters),
    ):
        t0 = time.perf_counter()
        runs = evaluate(
            dataset,
            "cold-items",
            ["hybrid"],
            ks=(10,),
            seeds=seeds,
            item_features=features,
            log=lambda s: None,
        )
        v = [r.metrics["ndcg@10"] for r in runs if r.model == "hybrid"]
        rows.append(
            f"| cold-items | {label} | {np.mean(v):.4f} ({', '.join(f'{x:.4f}' for x in v)}) "
            f"| – | – | {(time.perf_counter() - t0) / len(seeds):.0f} |"
        )
        print(rows[-1], flush=True)
    return rows, raw


def generated(tmp: Path) -> dict[str, tuple[float, float]]:
    import os

    os.environ["AVREC_HOME"] = str(tmp / "home")
    sys.path.insert(0, str(ROOT))
    from typer.testing import CliRunner

    from avrec.cli import app
    from avrec.data.loaders import load_dataset
    from avrec.encoders.understand import encode_catalog
    from tests.slow.test_models_media import _catalog, _own_kind_share  # the test's own catalog

    root = tmp / "catalog"
    kinds, cold = _catalog(root)

    def share(args: list[str], out: Path, media: bool) -> float:
        result = CliRunner().invoke(app, ["train", str(root), "--out", str(out), *args])
        assert result.exit_code == 0, result.output
        assert ("media: image vectors of 32 items" in result.output) == media, result.output
        return _own_kind_share(out, tmp, kinds, cold)

    hybrid_without = share([], tmp / "hybrid-text", False)  # before the images are encoded
    encode_catalog(load_dataset(root), ("image",))
    shares = {"hybrid": (share([], tmp / "hybrid-media", True), hybrid_without)}
    tower = []
    for media in ("auto", "off"):
        config = tmp / f"{media}.json"
        config.write_text(f'{{"media": "{media}", "threads": 1}}')
        tower.append(
            share(
                ["--model", "two-tower", "--config", str(config)],
                tmp / f"tower-{media}",
                media == "auto",
            )
        )
    shares["two-tower"] = (tower[0], tower[1])
    return shares


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help=(
            f"the ml-100k rows of the last run ({SAVED.relative_to(ROOT)}), "
            "only the generated catalog rerun"
        ),
    )
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if not DATA.exists():
        print(f"skip: {DATA} not found (the shared datasets are not on this machine)")
        return
    import datetime as dt

    if args.reuse and SAVED.exists():
        saved = json.loads(SAVED.read_text())
        rows, seeds, stamp = saved["rows"], saved["seeds"], saved["stamp"]
        reused = f" These rows are from the full run of {stamp} (reused with `--reuse`)."
    else:
        rows, _ = ml100k(seeds)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        SAVED.parent.mkdir(parents=True, exist_ok=True)
        SAVED.write_text(json.dumps({"seeds": seeds, "rows": rows, "stamp": stamp}, indent=1))
        reused = ""
    with tempfile.TemporaryDirectory() as tmp:
        shares = generated(Path(tmp))
    body = (
        "The two-tower reads image, video and audio vectors beside the text when the training\n"
        "data has them (`avrec train` takes them from what `avrec encode` cached for the\n"
        "catalog's files). Each media block is cut to its first 64 principal components, rows\n"
        "unit length, plus a has-it flag; the item tower's first layer learns how much each\n"
        'block counts. With `media="auto"` (the default) two short trainings with a tenth of\n'
        "the warm items hidden decide: the media stay in when they rank the hidden items better\n"
        "by content alone (probe NDCG@10 with vs without below).\n\n"
        f"**ml-100k**, EfficientNet-Lite0 poster vectors (1,618 of 1,682 items), seeds {seeds}; "
        "NDCG@10 (per seed); fit: median seconds per training run, the media choice included."
        + reused
        + "\n\n"
        "| protocol | model, what it reads | ndcg@10 | media kept | probe (with vs without) "
        "| fit (s) |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        "The hybrid (the default model) reads the media in its cold-item ranker\n"
        "(`models.coldrank`): the mean and top-5 similarity of an item's media vector (its\n"
        "blocks above, joined) to the history's items, two features beside the text, genre and\n"
        "people ones, so the ranker learns on simulated cold items how much they count; the\n"
        'explanation names the nearest history item ("it looks and sounds like X"). Catalogs\n'
        "without media are ranked as before (the columns are not added). The hybrid rows above:\n"
        "fit (s) is the seconds per seed, fit and ranking.\n\n"
        "**Generated catalog** where only the thumbnails tell the items apart (titles are\n"
        "neutral names; tests/slow/test_models_media.py): own kind among each user's top 3 of\n"
        "the cold items (1.0: all).\n\n"
        "| model | with the image vectors | text only |\n|---|---|---|\n"
        + "".join(f"| {m} | {w:.2f} | {t:.2f} |\n" for m, (w, t) in shares.items())
        + "\nThe names say nothing about the kind, so a text-only figure is chance: each user of\n"
        "a kind ranks the cold items the same way, by accidental likeness of names, so it lands\n"
        "anywhere from 0 to 1 rather than at 0.5.\n"
    )
    write_section("media", "Media in the models", body, "benchmarks/bench_media.py")


if __name__ == "__main__":
    main()
