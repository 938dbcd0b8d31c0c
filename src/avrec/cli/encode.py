"""``avrec encode`` (understand every item) and ``avrec describe ITEM_ID``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from avrec.cli.common import Cluster, DbUrl, UserError, Workers, cluster_client, handles_errors


def encode(
    modalities: Annotated[
        str, typer.Option(help="comma-separated: text,image,audio,video")
    ] = "text,image,audio,video",
    database_url: DbUrl = None,
    root: Annotated[
        Path | None,
        typer.Option(
            help="folder the media paths are relative to, for items whose dataset has none recorded"
        ),
    ] = None,
    text_encoder: Annotated[
        str,
        typer.Option(
            help="auto (MiniLM for English catalogs; multilingual-e5 if any item is Chinese "
            "etc.), text-en or text-multi"
        ),
    ] = "auto",
    ocr_images: Annotated[
        bool, typer.Option(help="also read text in images by OCR (~0.6 s each)")
    ] = False,
    sentiment: Annotated[
        bool, typer.Option(help="score interaction comments that have no sentiment yet")
    ] = True,
    chunk_items: Annotated[
        int,
        typer.Option(min=1, help="items understood and stored at a time (one task per chunk)"),
    ] = 5_000,
    cluster: Cluster = None,
    workers: Workers = None,
) -> None:
    """Encode the items in the database with the pretrained encoders (batched, cached by
    content hash, resumable) and store their understanding; broken media are marked failed.
    The catalog is encoded a chunk at a time (stored as it is done), as Dask tasks with
    --workers/--cluster; the stored vectors are the same either way."""
    import time

    from tqdm import tqdm

    from avrec.encoders.batches import EncodeSettings, encode_to_store
    from avrec.encoders.store import item_roots, update_sentiment
    from avrec.encoders.understand import MODALITIES
    from avrec.storage.db import get_engine
    from avrec.storage.repository import load_from_db

    chosen = tuple(m.strip() for m in modalities.split(",") if m.strip())
    bad = [m for m in chosen if m not in MODALITIES]
    if bad or not chosen:
        raise UserError(
            f"unknown modality {', '.join(bad) or '(none)'}; choose from {', '.join(MODALITIES)}"
        )
    if text_encoder not in ("auto", "text-en", "text-multi"):
        raise UserError(
            f"unknown text encoder {text_encoder!r}; choose auto, text-en or text-multi"
        )
    if root is not None and not root.is_dir():
        raise UserError(f"--root {root}: not a folder")
    engine = get_engine(database_url)
    items = load_from_db(engine).items
    if items.empty:
        raise UserError("the database has no items; run avrec ingest first")
    roots = item_roots(engine).set_index("item_id")["root"]
    fallback = str(root.resolve()) if root is not None else ""
    items = items.assign(_root=items["item_id"].map(roots).fillna(fallback).replace("", fallback))
    t0 = time.perf_counter()
    with cluster_client(cluster, workers):
        for folder, group in items.groupby("_root", sort=False):
            group = group.drop(columns="_root").reset_index(drop=True)
            settings = EncodeSettings(chosen, folder or None, text_encoder, ocr_images)
            with tqdm(total=len(group), desc="encode", unit="item") as bar:
                totals = encode_to_store(
                    engine, group, settings, chunk_items=chunk_items, on_chunk=bar.update
                )
            for modality, counts in totals.counts.items():
                typer.echo(
                    f"{modality:6s} ok {counts['ok']:>6,}  failed {counts['failed']:>5,}  "
                    f"missing {counts['missing']:>6,}   ({folder or 'no media folder'})"
                )
            for item_id, modality, reason in totals.failures:
                typer.echo(f"  failed {item_id} [{modality}]: {reason}", err=True)
            if totals.n_failures > len(totals.failures):
                typer.echo(
                    f"  ... and {totals.n_failures - len(totals.failures)} more failures "
                    "(avrec describe ITEM_ID)",
                    err=True,
                )
    if sentiment:
        scored = update_sentiment(engine)
        if scored:
            typer.echo(f"sentiment scored for {scored:,} interaction comments")
    typer.echo(f"encoded {len(items):,} items in {time.perf_counter() - t0:.1f} s")


def describe(
    item_id: Annotated[str, typer.Argument(help="an item ID")],
    database_url: DbUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Print what avrec understood of an item, per modality."""
    from avrec.encoders.store import describe as describe_item
    from avrec.storage.db import get_engine

    info = describe_item(get_engine(database_url), item_id)
    if info is None:
        raise UserError(f"unknown item {item_id!r}")
    if as_json:
        typer.echo(json.dumps(info, ensure_ascii=False, indent=2, default=str))
        return
    item = info["item"]
    typer.echo(f"{item_id}: {item.get('title', '')}")
    for key in ("kind", "year", "genres", "tags", "language", "image", "video", "audio"):
        if key in item:
            typer.echo(f"  {key}: {item[key]}")
    if not info["understanding"]:
        typer.echo("  (not encoded yet: run avrec encode)")
    for modality, u in info["understanding"].items():
        line = f"  [{modality}] {u['status']} ({u['encoder']} {u['version']})"
        if u["reason"]:
            line += f": {u['reason']}"
        typer.echo(line)
        for k, v in (u["attributes"] or {}).items():
            if isinstance(v, list):
                v = ", ".join(map(str, v))
            elif isinstance(v, dict):
                v = ", ".join(f"{name} {score}" for name, score in v.items())
            typer.echo(f"      {k}: {v}")


def register(app: typer.Typer) -> None:
    app.command("encode")(handles_errors(encode))
    app.command("describe")(handles_errors(describe))
