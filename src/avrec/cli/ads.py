"""``avrec ads``: check an ad catalog, choose ads for a file of requests, learn the
engagement model (docs/ads.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from avrec.cli.common import UserError, handles_errors, require_file, require_model

ads_app = typer.Typer(
    help="Video ads: ad catalogs (ads.csv), ad selection, engagement: see docs/ads.md.",
    no_args_is_help=True,
)


@contextmanager
def _one_line() -> Iterator[None]:
    """An ad catalog's problems as one line: the first, and how many in all."""
    from avrec.ads.catalog import AdCatalogError

    try:
        yield
    except AdCatalogError as exc:
        more = f" ({exc.total} problems in all)" if exc.total > 1 else ""
        raise UserError(f"{exc.problems[0]}{more}") from None


def _ads(path: Path):
    from avrec.ads.catalog import load_ads

    with _one_line():
        return load_ads(require_file(path, "ad catalog"))


def check(file: Annotated[Path, typer.Argument(help="ad catalog (ads.csv)")]) -> None:
    """Check an ad catalog (its images and videos are read by the image encoder); a problem is
    one line naming its line, exit status 2."""
    from avrec.ads.media import encode_ad_media, present

    ads = _ads(file)
    with _one_line():
        pictures = int(present(encode_ad_media(ads)).sum())
    advertisers = len({ad.advertiser for ad in ads})
    typer.echo(
        f"{file}: {len(ads)} ad(s) valid from {advertisers} advertiser(s), "
        f"{pictures} with an image or video"
    )


def select(
    ads_file: Annotated[Path, typer.Argument(help="ad catalog (ads.csv)")],
    model_dir: Annotated[Path, typer.Argument(help="trained model folder")],
    requests: Annotated[
        Path, typer.Option("--requests", help="requests, one JSON object per line")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", help="answers, JSONL (default: stdout)")
    ] = None,
    slots: Annotated[int, typer.Option("--slots", min=1, max=20, help="ads per request")] = 1,
    engagement: Annotated[
        Path | None,
        typer.Option("--engagement", help="engagement model (avrec ads fit); default: built in"),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="pacing draws")] = 0,
    dataset: Annotated[
        Path | None,
        typer.Option(
            "--dataset",
            help="the model's dataset folder: its items' images and videos (relative to it), "
            "which ads with pictures are compared with (the encoders' cache: avrec encode)",
        ),
    ] = None,
) -> None:
    """The eligible ads for each request, by expected value (P(engage) × bid), with reasons."""
    import json

    from avrec.ads.batch import read_requests, serve_batch
    from avrec.ads.eligibility import Pacing
    from avrec.ads.engagement import EngagementModel, default_engagement
    from avrec.ads.learn import ad_scorer
    from avrec.ads.select import AdSelector
    from avrec.cli.rules import frame_of
    from avrec.models.base import Recommender

    ads = _ads(ads_file)
    model = Recommender.load(require_model(model_dir))
    catalog = frame_of(model)
    user_vocab, item_vocab, matrix = model.fitted_parts()
    recency = model.train_recency if model.train_recency is not None else matrix

    def training(user: str) -> list[str]:
        if user not in user_vocab:
            return []
        row = recency[user_vocab.index(user)]
        return [str(item_vocab.ids[i]) for i in row.indices[(-row.data).argsort(kind="stable")]]

    batch = read_requests(require_file(requests, "requests file"), catalog, training, slots)
    chosen = EngagementModel.load(engagement) if engagement else default_engagement()
    root = None
    if dataset is not None:
        from avrec.ads.media import with_media
        from avrec.data.loaders import load_dataset

        if not dataset.is_dir():
            raise UserError(f"{dataset}: no such dataset folder (--dataset)")
        source = load_dataset(dataset)
        catalog, root = with_media(catalog, source.items), source.root
    with _one_line():
        scorer = ad_scorer(model, ads, catalog, root, log=lambda m: typer.echo(m, err=True))
    answers = serve_batch(AdSelector(ads, scorer, chosen, Pacing(seed=seed)), batch)
    lines = "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in answers)
    if output is None:
        typer.echo(lines, nl=False)
    else:
        output.write_text(lines, encoding="utf-8")
        shown = sum(len(a["ads"]) for a in answers)
        typer.echo(f"{len(answers)} request(s), {shown} ad(s) chosen -> {output}")


def fit(
    dataset: Annotated[Path, typer.Argument(help="dataset folder with timestamps")],
    ads_file: Annotated[Path, typer.Argument(help="ads that promote catalog items (item_id)")],
    out: Annotated[Path, typer.Option("--out", help="engagement model file (JSON)")],
    model: Annotated[str, typer.Option("--model", help="recommender for the signals")] = "ease",
    steps: Annotated[int, typer.Option("--steps", min=1, help="steps per person, at most")] = 10,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Learn P(engage | person, ad, context) from the dataset: a later watch of what an ad
    promotes is an engagement (docs/ads.md, "Learning")."""
    from avrec.ads.learn import fit_engagement
    from avrec.data.loaders import load_dataset

    ads = _ads(ads_file)
    if not dataset.is_dir():
        raise UserError(f"{dataset}: no such dataset folder")
    with _one_line():
        learned = fit_engagement(
            load_dataset(dataset), ads, model=model, max_steps=steps, seed=seed
        )
    learned.save(out)
    doc = learned.to_dict()
    terms = ", ".join(f"{f} {c:+.3f}" for f, c in zip(doc["features"], doc["coef"], strict=True))
    typer.echo(f"{out}: logit = {terms}, intercept {learned.intercept_:+.3f} ({learned.fit_info_})")


def register(app: typer.Typer) -> None:
    ads_app.command("check")(handles_errors(check))
    ads_app.command("select")(handles_errors(select))
    ads_app.command("fit")(handles_errors(fit))
    app.add_typer(ads_app, name="ads")
