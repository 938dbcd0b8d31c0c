"""Benchmark: video ads on ml-100k ("trailer ads") and a simulated day of ad serving.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_ads.py [--model hybrid] [--ads 80]

**Trailer ads.** ``--ads`` films of middle popularity (training popularity ranks 100-500,
drawn with the seed) are advertised, each by an ad whose creative is its title, genres and
description, and the film's poster as its image (``images/`` of the dataset). Each person's
time-ordered history is split: the first 80% trains the recommender; at up to ``--steps``
positions of the rest, the context is the film just watched and an ad is a hit if the person
watches the advertised film later (ads for films already watched are not eligible; steps with
no eligible hit are left out). HR@5 per step, averaged per
person, with bootstrap 95% intervals over people, for: random eligible, popularity, person only
(the recommender's score from the whole history), context only (its score from the film just
watched), content (text similarity of the film just watched and the ad), visual (poster
similarity of the two, EfficientNet-Lite0) and person × context (``ads.engagement``, a logistic
model over those signals), without and with the visual signal in one run (paired difference
per person). The logistic models are learned on the training part alone: a second
recommender is fitted on the first 75% of each training history and the examples are the
steps of the last 25%. The full run also writes the simulated day's own section (the same
day ``--day-only`` computes).

**A simulated day.** The test steps become one day's requests (each person's steps spread over
the day in order, people interleaved at random), one slot each. The trailer ads get bids and
daily budgets (some above what demand can reach), frequency cap 2 and brand-safety exclusions
(family films never next to horror or crime). A person clicks an ad shown for a film they watch
later. The same day is run without budgets first to measure each campaign's demand. Reported:
frequency-cap and brand-safety violations (counted from the impression log, not trusted from the
selector) and each campaign's spend against its budget.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._report import write_section

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AVREC_SHARED_DATA", ROOT.parent / "shared" / "data")) / "ready"
OUT = ROOT / "reports" / "benchmarks" / "ads.json"
METHODS = (
    "random",
    "popularity",
    "person",
    "context",
    "content",
    "visual",
    "person_x_context",
    "person_x_context_visual",
)
#: the engagement model without the visual signal (the table's person × context)
TEXT_ONLY = ("person", "context", "content", "interaction")


def trailer_ads(items: pd.DataFrame, promoted: list[str], root: Path | None):
    """An ad per promoted film: its title, genres and description as text, its poster (where
    the dataset has one) as the image."""
    from avrec.ads.catalog import Ad

    rows = items.set_index(items["item_id"].astype(str))
    ads = []
    for item in promoted:
        row = rows.loc[item]
        genres = str(row.get("genres") or "").replace("|", ", ")
        text = f"Trailer: {row['title']}. Genres: {genres}. {row.get('description') or ''}"
        poster = row.get("image") if isinstance(row.get("image"), str) else None
        ads.append(
            Ad(
                f"trailer-{item}",
                "studio",
                text.strip(),
                1.0,
                1.0,
                1,
                item_id=item,
                image=poster if root is not None else None,
                media_root=root,
            )
        )
    return ads


def hits_at(scores: np.ndarray, labels: np.ndarray, k: int, rng) -> np.ndarray:
    """Per step: 1 if one of the top ``k`` eligible ads (label >= 0) is a hit; ties broken at
    random."""
    noise = rng.random(scores.shape) * 1e-9
    s = np.where(labels >= 0, scores + noise, -np.inf)
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(labels, top, axis=1)
    ok = np.take_along_axis(s, top, axis=1) > -np.inf
    return ((picked == 1) & ok).any(axis=1).astype(float)


def per_user_mean(values: np.ndarray, owners: np.ndarray) -> np.ndarray:
    _, inv = np.unique(owners, return_inverse=True)
    return np.bincount(inv, weights=values) / np.bincount(inv)


def bootstrap(per_user: np.ndarray, seed: int, n: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(per_user), size=(n, len(per_user)))
    means = per_user[idx].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def trailer_benchmark(args, model_name: str) -> dict:
    from avrec.ads.engagement import EngagementModel, trailer_examples
    from avrec.ads.learn import (
        ad_scorer,
        engagement_examples,
        fit_prefix_model,
        step_signals,
        time_ordered,
    )
    from avrec.ads.scoring import FEATURES
    from avrec.data.loaders import load_dataset

    t0 = time.perf_counter()
    ds = load_dataset(DATA / "ml-100k")
    histories = {u: h for u, h in time_ordered(ds.interactions).items() if len(h) >= 10}
    users = sorted(histories)
    split = {u: int(len(histories[u]) * 0.8) for u in users}
    counts = pd.Series([i for u in users for i in histories[u][: split[u]]]).value_counts()
    ranked = [str(i) for i in counts.index]
    rng = np.random.default_rng(args.seed)
    promoted = sorted(rng.choice(ranked[100:500], args.ads, replace=False).tolist())
    ads = trailer_ads(ds.items, promoted, ds.root)
    pop = np.array([counts.get(p, 0) for p in promoted], dtype=float)
    hist_list = [histories[u] for u in users]

    # the combinations, learned on the training part only (its own recommender on the first
    # 75% of each training history, steps from the rest), without and with the visual signal
    train_hists = {u: histories[u][: split[u]] for u in users}
    x_fit, y_fit = engagement_examples(
        ds, ads, train_hists, model=model_name, max_steps=args.steps, seed=args.seed
    )
    engaged = EngagementModel(features=FEATURES).fit(x_fit, y_fit)
    text_only = EngagementModel(features=TEXT_ONLY).fit(x_fit, y_fit)
    model = fit_prefix_model(ds, histories, split, model_name, args.seed)
    scorer = ad_scorer(model, ads, ds.items, ds.root, encode_missing=True)
    test_steps = trailer_examples(
        hist_list, promoted, [split[u] for u in users], args.steps, args.seed + 1
    )
    x = step_signals(scorer, histories, users, test_steps)
    labels = np.array([s[2] for s in test_steps])
    owners = np.array([s[0] for s in test_steps])
    scores = {
        "random": rng.random(labels.shape),
        "popularity": np.broadcast_to(pop, labels.shape),
        "person": x[..., 0],
        "context": x[..., 1],
        "content": x[..., 2],
        "visual": x[..., FEATURES.index("visual")],
        "person_x_context": text_only.logit(x),
        "person_x_context_visual": engaged.logit(x),
    }
    results, per_user = {}, {}
    for name in METHODS:
        hit = hits_at(np.asarray(scores[name]), labels, 5, np.random.default_rng(args.seed))
        per_user[name] = per_user_mean(hit, owners)
        lo, hi = bootstrap(per_user[name], args.seed)
        results[name] = {"hr@5": float(per_user[name].mean()), "ci95": [lo, hi]}
    for best, base in PAIRS:
        diff = per_user[best] - per_user[base]
        lo, hi = bootstrap(diff, args.seed)
        results[f"{best} - {base}"] = {"diff": float(diff.mean()), "ci95": [lo, hi]}
    has = x[..., FEATURES.index("has_visual")] > 0
    return {
        "model": model_name,
        "ads": len(ads),
        "ads_with_poster": sum(1 for a in ads if a.image),
        "steps_with_both_pictures": float((has & (labels >= 0)).sum() / (labels >= 0).sum()),
        "people": len(np.unique(owners)),
        "test_steps": len(test_steps),
        "fit_rows": engaged.fit_info_["rows"],
        "engagement": engaged.to_dict(),
        "engagement_text_only": text_only.to_dict(),
        "results": results,
        "seconds": time.perf_counter() - t0,
        "_day": (ds, scorer, ads, histories, users, split, engaged, promoted),
    }


#: paired differences per person: (better, baseline)
PAIRS = (
    ("person_x_context", "person"),
    ("person_x_context", "context"),
    ("person_x_context_visual", "person_x_context"),
    ("person_x_context_visual", "person"),
)


def simulated_day(day, args) -> dict:
    """One day of requests (the test steps) against ``args.campaigns`` of the trailer ads."""
    import dataclasses

    from avrec.ads.eligibility import Context, MemoryLedger, Pacing, Person
    from avrec.ads.engagement import trailer_examples
    from avrec.ads.scoring import AdScorer
    from avrec.ads.select import AdRequest, AdSelector

    ds, full_scorer, ads, histories, users, split, engaged, promoted = day
    rng = np.random.default_rng(args.seed + 7)
    keep = np.sort(rng.choice(len(ads), args.campaigns, replace=False))
    # every test step of everyone, with or without a later watch of a campaign's film
    hist_list = [histories[u] for u in users]
    starts = [split[u] for u in users]
    steps = trailer_examples(hist_list, promoted, starts, 10**6, args.seed, keep_empty=True)
    from avrec.ads.learn import step_signals

    x = step_signals(full_scorer, histories, users, steps)
    labels = np.array([s[2] for s in steps])
    items = ds.items.set_index(ds.items["item_id"].astype(str), drop=False)
    family = {"children's", "animation"}
    campaigns = []
    for n in keep:
        ad = ads[n]
        genres = {g.lower() for g in str(items.loc[ad.item_id, "genres"]).split("|")}
        exclude = (
            {"horror", "crime", "thriller"} if genres & family else {"war"} if n % 3 else set()
        )
        bid = float(np.round(rng.uniform(0.5, 2.0), 2))
        campaigns.append(
            dataclasses.replace(ad, bid=bid, frequency_cap=2, exclude=frozenset(exclude))
        )
    x, labels = x[:, keep], labels[:, keep]
    # each person's steps at sorted random times of the day, everyone interleaved
    day0 = dt.datetime(2026, 12, 7)
    owners = np.array([s[0] for s in steps])
    seconds = np.zeros(len(steps))
    for u in np.unique(owners):
        at = np.flatnonzero(owners == u)
        seconds[at] = np.sort(rng.uniform(0, 86_400, len(at)))
    order = np.argsort(seconds, kind="stable")
    requests = []
    for n in order:
        u, t, _ = steps[n]
        hist = histories[users[u]][: t + 1]
        ctx = Context.from_row(items.loc[hist[-1]].to_dict())
        person = Person(users[u], seen=frozenset(hist))
        requests.append(
            AdRequest(person, tuple(hist), ctx, day0 + dt.timedelta(seconds=seconds[n]))
        )
    scorer = AdScorer.__new__(AdScorer)  # the signals are computed already: choose() reads x

    def run(budgets: dict[str, float] | None, pacing: Pacing | None) -> dict:
        live = [
            dataclasses.replace(c, daily_budget=budgets[c.ad_id])
            if budgets
            else dataclasses.replace(c, daily_budget=1e12)
            for c in campaigns
        ]
        selector = AdSelector(live, scorer, engaged, pacing)
        ledger, log, excluded = MemoryLedger(), [], {}
        reached: dict[str, float] = {}  # the hour each campaign reached 95% of its budget
        for n, req in zip(order, requests, strict=True):
            chosen = selector.choose(req, x[n], ledger, slots=1)
            for k, v in chosen.excluded.items():
                excluded[k] = excluded.get(k, 0) + v
            for shown in chosen.ads:
                a = next(n_ for n_, c in enumerate(live) if c.ad_id == shown["ad_id"])
                ledger.record("impression", req.person.user_id, live[a], req.now.date())
                log.append((req.person.user_id, a, req.context))
                if labels[n, a] == 1:  # they watch the film later: they click
                    ledger.record("click", req.person.user_id, live[a], req.now.date())
                    cost = ledger.spent(day0.date())[live[a].ad_id]
                    if cost >= 0.95 * live[a].daily_budget and live[a].ad_id not in reached:
                        reached[live[a].ad_id] = (req.now - day0).total_seconds() / 3600
        spent = ledger.spent(day0.date())
        return {
            "spent": {c.ad_id: spent.get(c.ad_id, 0.0) for c in live},
            "hour_95": reached,
            "log": log,
            "excluded": excluded,
        }

    demand = run(None, None)["spent"]
    budgets = {}
    for n, c in enumerate(campaigns):
        share = 1.5 if n % 3 == 2 else float(rng.uniform(0.4, 0.8))
        # a whole number of clicks: spend never exceeds a budget, so a budget of a few bids
        # that is not a multiple of the bid could not be met within 5% at all
        clicks = max(1, round(demand[c.ad_id] * share / c.bid))
        budgets[c.ad_id] = round(clicks * c.bid, 2)
    pacers = {
        "none": None,
        "even": Pacing(seed=args.seed, demand_aware=False),
        "demand": Pacing(
            seed=args.seed, demand_margin=args.demand_margin, half_life=args.half_life
        ),
    }
    runs = {name: run(budgets, pacing) for name, pacing in pacers.items()}
    day_run = runs["demand"]  # the service's pacing
    shown_per = {}
    for user, a, _ in day_run["log"]:
        shown_per[(user, a)] = shown_per.get((user, a), 0) + 1
    cap_violations = sum(1 for (u, a), k in shown_per.items() if k > campaigns[a].frequency_cap)
    safety_violations = sum(
        1 for _, a, ctx in day_run["log"] if campaigns[a].exclude & (ctx.genres | ctx.tags)
    )
    rows = []
    for c in campaigns:
        spent, budget = day_run["spent"][c.ad_id], budgets[c.ad_id]
        rows.append(
            {
                "ad_id": c.ad_id,
                "bid": c.bid,
                "budget": budget,
                "demand": demand[c.ad_id],
                "spent": spent,
                "ratio": spent / budget,
                "ratio_even": runs["even"]["spent"][c.ad_id] / budget,
                "ratio_none": runs["none"]["spent"][c.ad_id] / budget,
                "hour_95": {k: v["hour_95"].get(c.ad_id) for k, v in runs.items()},
                "bound": demand[c.ad_id] >= budget,
            }
        )
    bound = [r for r in rows if r["bound"]]
    within = {
        key: sum(1 for r in bound if abs(r[key] - 1) <= 0.05)
        for key in ("ratio", "ratio_even", "ratio_none")
    }
    return {
        "within_5pct_by_pacing": {
            "demand": within["ratio"],
            "even": within["ratio_even"],
            "none": within["ratio_none"],
        },
        "paced_by_pacing": {k: v["excluded"].get("paced", 0) for k, v in runs.items()},
        "requests": len(requests),
        "campaigns": rows,
        "impressions": len(day_run["log"]),
        "cap_violations": cap_violations,
        "brand_safety_violations": safety_violations,
        "excluded": day_run["excluded"],
        "budget_bound": len(bound),
        "within_5pct": sum(1 for r in bound if abs(r["ratio"] - 1) <= 0.05),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", default="ease,hybrid", help="recommenders; the simulated day uses the last"
    )
    parser.add_argument("--ads", type=int, default=80)
    parser.add_argument("--steps", type=int, default=10, help="test steps per person, at most")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--campaigns", type=int, default=12, help="ads in the simulated day")
    parser.add_argument("--demand-margin", type=float, default=0.25, help="Pacing.demand_margin")
    parser.add_argument("--half-life", type=float, default=3600.0, help="Pacing.half_life (s)")
    parser.add_argument(
        "--day-only",
        action="store_true",
        help="only the simulated day, with the last of --models (its own docs section)",
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.day_only:
        run = trailer_benchmark(args, args.models.split(",")[-1])
        out = {"day": simulated_day(run.pop("_day"), args), "day_model": run["model"]}
        out["seconds"] = time.perf_counter() - start
        print(json.dumps(out, indent=2))
        if not args.no_write:
            write_section(
                "ads-day",
                "Video ads: the simulated day, demand-aware pacing",
                day_report(out),
                SCRIPT,
            )
        return
    runs = [trailer_benchmark(args, name) for name in args.models.split(",")]
    day = runs[-1].pop("_day")
    for run in runs[:-1]:
        run.pop("_day")
    out = {"runs": runs, "day": simulated_day(day, args), "day_model": runs[-1]["model"]}
    out["seconds"] = time.perf_counter() - start
    print(json.dumps(out, indent=2))
    if not args.no_write:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(out, indent=2) + "\n")
        write_section(
            "ads", "Video ads: trailer ads and a simulated day", report(out, args), SCRIPT
        )
        # the same day as --day-only computes (the last model's run, the same arguments)
        write_section(
            "ads-day", "Video ads: the simulated day, demand-aware pacing", day_report(out), SCRIPT
        )


SCRIPT = "benchmarks/bench_ads.py"
NOTES = """Tried and kept or not (2026-12-07, `ease`, same seed):
- Pacing on an even spread (schedule = share of the day gone) with budgets not a whole number
  of clicks: 4 of 8 budget-bound campaigns within 5%; with the schedule 15% ahead of an even
  spread (kept): 5 of 8. Spend never exceeds a budget (an ad leaves when one more click would
  pass it), so a budget of 4-7 bids that is not a multiple of the bid cannot come within 5%
  (e.g. 4.17 at 0.88 a click: 3.52 at most); with budgets of whole numbers of clicks (kept in
  the simulation): 7 of 8, the same with the schedule 30% ahead.
- The campaign that misses (trailer-509, 0.85 of its budget with demand 1.3 times it): demand
  for a film is front-loaded in this simulation (each person's steps are spread over the day in
  order, and once they watch the film its ads are no longer eligible to them), while pacing
  spreads spend evenly. Without pacing (budgets and caps only) all 8 reach their budget, by
  spending as fast as demand comes; with a wider pacing margin (10% of the budget) trailer-509
  ends at the same 22 clicks. Demand-aware pacing (the section "Video ads: the simulated day,
  demand-aware pacing" below) brings it to its budget: 8 of 8 with `ease`.
- The combination's weights: a logistic model on person, context, content and person × context;
  the product term gets a small negative weight for both recommenders (the two signals overlap
  where both are high). The service's default engagement model (`engagement.DEFAULT`) is the
  `hybrid` one above without the visual signal, which moved HR@5 by less than its interval (on
  ml-100k a film's poster says little about whether its trailer is followed by a watch); the
  simulated day uses the combination with the visual signal.
- The visual signal as the cosine alone (0 where either picture is missing, no indicator) was
  not tried: a missing picture would read as an unlike one."""
NAMES = {
    "random": "random eligible",
    "popularity": "popularity (training views of the film)",
    "person": "person only (recommender, whole history)",
    "context": "context only (recommender, the film just watched)",
    "content": "content only (text similarity, film just watched vs ad)",
    "visual": "visual only (poster similarity, film just watched vs ad's image)",
    "person_x_context": "**person × context** (logistic, learned on training data)",
    "person_x_context_visual": "**person × context + visual** (the same, with the visual signal)",
}
PAIR_NAMES = {
    ("person_x_context", "person"): "person × context − person",
    ("person_x_context", "context"): "person × context − context",
    ("person_x_context_visual", "person_x_context"): "**+ visual − person × context**",
    ("person_x_context_visual", "person"): "person × context + visual − person",
}


def report(out: dict, args) -> str:
    runs = out["runs"]
    first = runs[0]
    lines = [
        f"ml-100k, {first['ads']} advertised films of middle popularity (training popularity "
        f"ranks 100-500), {first['people']} people, {first['test_steps']} test steps (at most "
        f"{args.steps} per person in the last 20% of their history, each with at least one "
        f"eligible hit); seed {args.seed}. HR@5 of the ranking of eligible ads (not yet "
        "watched), averaged per person; 95% intervals by bootstrap over people. The person × "
        "context combination is learned on the training part alone (a second recommender "
        "fitted on the first 75% of each training history scores the steps of the rest). "
        f"Each ad's image is its film's poster ({first['ads_with_poster']} of {first['ads']} "
        "films have one); the visual signal is the cosine of EfficientNet-Lite0 features "
        "(the catalog's image encoder) of the poster of the film just watched and the ad's, "
        "with an indicator where both exist "
        f"({first['steps_with_both_pictures']:.1%} of the (step, eligible ad) pairs). The two "
        "combinations (without and with the visual signal) are fitted on the same training "
        "rows in the same run.",
        "",
        "| ranking of eligible ads | " + " | ".join(f"`{r['model']}`" for r in runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    for name in METHODS:
        cells = [
            f"{r['results'][name]['hr@5']:.4f} ({r['results'][name]['ci95'][0]:.4f}-"
            f"{r['results'][name]['ci95'][1]:.4f})"
            for r in runs
        ]
        lines.append(f"| {NAMES[name]} | " + " | ".join(cells) + " |")
    for best, base in PAIRS:
        cells = []
        for r in runs:
            d = r["results"][f"{best} - {base}"]
            cells.append(f"{d['diff']:+.4f} ({d['ci95'][0]:+.4f} to {d['ci95'][1]:+.4f})")
        lines.append(
            f"| {PAIR_NAMES[(best, base)]}, paired per person | " + " | ".join(cells) + " |"
        )
    lines.append("")
    for r in runs:
        for key, what in (("engagement_text_only", "without"), ("engagement", "with")):
            e = r[key]
            pairs = zip(e["features"], e["coef"], strict=True)
            coef = ", ".join(f"{f} {c:+.3f}" for f, c in pairs)
            lines.append(
                f"- `{r['model']}` {what} the visual signal: logit = {coef}, intercept "
                f"{e['intercept']:+.3f} ({e['fit']['rows']} training rows, "
                f"{e['fit']['positives']} engaged)."
            )
        lines.append(f"- `{r['model']}`: {r['seconds']:.0f} s with both recommender fits.")
    lines += ["", *day_lines(out)]
    lines += ["", f"Run time {out['seconds']:.0f} s in all.", "", NOTES]
    return "\n".join(lines)


def day_lines(out: dict) -> list[str]:
    day = out["day"]
    by = day["within_5pct_by_pacing"]
    lines = [
        f"**Simulated day** (`{out['day_model']}`): {day['requests']} requests (every test "
        "step of everyone, one slot), "
        f"{len(day['campaigns'])} campaigns, frequency cap 2 per person, {day['impressions']} "
        f"impressions with demand-aware pacing. Frequency-cap violations: "
        f"**{day['cap_violations']}**; brand-safety violations: "
        f"**{day['brand_safety_violations']}** (counted from the impression log; the rules left "
        f"out {day['excluded'].get('brand_safety', 0)} (request, ad) pairs for brand safety, "
        f"{day['excluded'].get('frequency_cap', 0)} for the cap, "
        f"{day['excluded'].get('paced', 0)} by pacing, {day['excluded'].get('budget', 0)} for "
        f"the budget). Budget-bound campaigns (demand without budgets >= budget): "
        f"{day['budget_bound']}, of which **{by['demand']}** ended within ±5% of their budget "
        f"with demand-aware pacing ({by['even']} with pacing on the schedule alone, "
        f"{by['none']} without pacing).",
        "",
        "Spent / budget with each pacing; in brackets the hour (UTC) at which the campaign "
        "reached 95% of its budget (– never).",
        "",
        "| campaign | bid | daily budget | demand (no budgets) | spent | demand-aware pacing | "
        "even pacing | no pacing |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def at(hour: float | None) -> str:
        return "–" if hour is None else f"{hour:.1f} h"

    for r in day["campaigns"]:
        h = r["hour_95"]
        lines.append(
            f"| {r['ad_id']}{'' if r['bound'] else ' (demand-bound)'} | {r['bid']:.2f} | "
            f"{r['budget']:.2f} | {r['demand']:.2f} | {r['spent']:.2f} | "
            f"{r['ratio']:.3f} ({at(h['demand'])}) | {r['ratio_even']:.3f} ({at(h['even'])}) | "
            f"{r['ratio_none']:.3f} ({at(h['none'])}) |"
        )
    return lines


def day_report(out: dict) -> str:
    return "\n".join(
        [*day_lines(out), "", f"Run time {out['seconds']:.0f} s in all.", "", DAY_NOTES]
    )


DAY_NOTES = """Demand-aware pacing (`avrec.ads.eligibility.Demand`, `Pacing`; kept, the
default): the pacer counts, per campaign and UTC day, the people newly eligible for it (all
rules but pacing held) in two exponentially weighted rates (half-lives 1 h and 2 h), whose ratio
gives the trend (an exponential fall); the forecast of the spend still to come is the people to
come × its spend per person reached so far. The schedule's share of the day is the larger of
the clock's and the share of the day's forecast people already come; a campaign ahead of it is
throttled only while the forecast spend to come exceeds its remaining budget by 25%. Only the
requests served so far are read (the simulator gives the pacer nothing else); the same requests
in the same order give the same day.

Tried (2026-12-07, `ease`, seed 0; budget-bound campaigns within ±5%, and the hours at which
the budget-bound campaigns reached 95% of their budget):
- Pacing on the clock alone (before): 7 of 8; trailer-509 0.880; budgets reached 6-19 h.
- Forecast = eligible *requests* a second (one rate) × spend per request taken part in × time
  left, throttling only while it exceeds the remaining budget by 25%: the same as the clock
  alone (7 of 8, trailer-509 0.880). It overestimated trailer-509's demand about 8-fold: a
  throttled ad keeps a person eligible (not capped, not shown) through many requests, so
  requests are not opportunities; caps bound the spend per person.
- Counting newly eligible *people* (one rate) × spend per person reached: 8 of 8, trailer-509
  0.960 (one click short), budgets reached 6-16 h.
- With the trend of the two rates: 8 of 8, trailer-509 1.000, 6-11 h.
- With the schedule following the share of demand gone too (kept): 8 of 8, all 1.000, 5-7 h;
  the demand-bound campaigns spend more (e.g. trailer-274 0.873 of its budget, 0.673 on the
  clock alone, 0.891 without pacing). In a synthetic day where new people arrive at a rate
  halving every 3 hours (`tests/unit/test_ads_pacing.py`), budget 60 against 120 clicks of
  demand: 40 on the clock alone, 60 demand-aware; without the demand-shaped schedule the
  drying rule alone reached 44.
- Other seeds (`ease`, `--seed 1`, `2`, `3`: other films, campaigns and budgets), kept
  pacing: 8 of 8 budget-bound campaigns within ±5% each (on the clock alone 8, 5 and 6 of 8;
  without pacing 8), 0 cap and brand-safety violations; budgets reached 95% at 4-10 h (1-7 h
  without pacing, 4-21 h or never on the clock alone).
- In this simulation demand is front-loaded (each person's first request comes early in the
  day; without pacing budgets run out at 2-5 h), so following demand spends budgets by
  mid-morning; with steady demand the schedule is the clock's. Spend never exceeds a budget;
  frequency caps and brand safety are checked before pacing and hold (0 violations)."""


if __name__ == "__main__":
    main()
