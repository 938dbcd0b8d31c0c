"""Benchmark: natural-language requests across languages. A Chinese request should rank the
catalog as its English counterpart does; multilingual-e5's raw request vectors carry the
language itself, which pulls a Chinese request towards the catalog's Chinese-flavoured items.
Compares the raw vectors with the language-neutral ones (avrec.encoders.crosslingual) on
held-out request pairs: the parallel requests are split in halves at random, the offset is
computed from one half and measured on the other (5 splits). Regenerates the "requests across
languages" section of docs/benchmarks.md.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_query_language.py

Catalog: ml-100k from ../shared/data (the bundled ml-latest-small demo data where that is
missing), its items' multilingual-e5 passage vectors as the recommender uses them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "ready" / "ml-100k"
K = 10
SPLITS = 5


def catalog():
    from avrec.data.loaders import load_dataset
    from avrec.demo import demo_data_path

    path = SHARED if SHARED.exists() else demo_data_path()
    return path.name, load_dataset(path).items


def measure(en: np.ndarray, other: np.ndarray, items: np.ndarray) -> dict[str, float]:
    """Agreement of ``other``'s rankings of the catalog with ``en``'s (row-aligned pairs)."""
    s_en, s_o = en @ items.T, other @ items.T
    top_en = np.argsort(-s_en, axis=1)[:, :K]
    top_o = np.argsort(-s_o, axis=1)[:, :K]
    jacc = [len(set(a) & set(b)) / len(set(a) | set(b)) for a, b in zip(top_en, top_o, strict=True)]
    corr = [np.corrcoef(a, b)[0, 1] for a, b in zip(s_en, s_o, strict=True)]
    return {"jaccard": float(np.mean(jacc)), "any": float(np.mean([j > 0 for j in jacc])),
            "corr": float(np.mean(corr)), "cos": float(np.mean(np.sum(en * other, axis=1)))}


LANGUAGES = {"zh": "Chinese", "ja": "Japanese", "ko": "Korean", "ru": "Russian", "es": "Spanish",
             "fr": "French", "de": "German", "pt": "Portuguese", "it": "Italian"}


def main() -> None:
    from avrec.encoders.crosslingual import REQUESTS_EN, TRANSLATIONS, neutralise
    from avrec.encoders.language import detect_language
    from avrec.encoders.pipeline import encode_item_texts
    from avrec.encoders.registry import get_encoder

    name, items_df = catalog()
    items = encode_item_texts(items_df, "text-multi")
    enc = get_encoder("text-multi")
    en = enc._raw_queries(REQUESTS_EN)
    vectors = {lang: enc._raw_queries(texts) for lang, texts in TRANSLATIONS.items()}
    rng = np.random.default_rng(0)
    runs = {lang: {"raw": [], "neutral": []} for lang in TRANSLATIONS}
    for _ in range(SPLITS):
        perm = rng.permutation(len(REQUESTS_EN))
        fit, test = perm[: len(perm) // 2], perm[len(perm) // 2:]
        # every language's offset from the fit half, as in use (a request read as another
        # language gets that language's offset)
        offsets = {lang: v[fit].mean(axis=0) - en[fit].mean(axis=0) for lang, v in vectors.items()}
        for lang, texts in TRANSLATIONS.items():
            other = vectors[lang]
            runs[lang]["raw"].append(measure(en[test], other[test], items))
            moved = neutralise(other[test], [texts[i] for i in test], offsets)
            runs[lang]["neutral"].append(measure(en[test], moved, items))
    rows = []
    for lang, texts in TRANSLATIONS.items():
        detected = sum(detect_language(t, short=True) == lang for t in texts)
        for label, key in (("raw", "raw"), ("language-neutral", "neutral")):
            m = {k: float(np.mean([r[k] for r in runs[lang][key]])) for k in runs[lang][key][0]}
            rows.append(f"| {LANGUAGES.get(lang, lang)} | {label} | {detected}/{len(texts)} | "
                        f"{m['jaccard']:.3f} | {m['any']:.2f} | {m['corr']:.3f} | {m['cos']:.3f} |")
    examples = []
    for q in ["太空冒险电影", "温馨的家庭喜剧"]:
        row = []
        for label, v in (("raw", enc._raw_queries([q])), ("language-neutral", enc.encode_queries([q]))):
            top = np.argsort(-(v @ items.T)[0])[:5]
            row.append(f"{label}: " + "; ".join(str(items_df["title"].iloc[i]) for i in top))
        examples.append(f"- “{q}” — " + " | ".join(row))
    table = "\n".join(rows)
    body = f"""Catalog: {name} ({len(items_df):,} items, multilingual-e5 passage vectors). {len(REQUESTS_EN)}
short film requests written in English and in each language below
(`avrec.encoders.crosslingual`), split in halves {SPLITS} times at random: a language's offset
is computed from one half and measured on the other, so no measured request took part in its
own correction. As in use, each request is moved by the offset of the language it is read as
(a short Latin-script request needs function words of its language and none of English;
"detected": requests read as their own language, the others stay or take another's offset). Top-{K} overlap: Jaccard of the
top {K} items of the request and of its English counterpart; any: share of requests sharing
at least one of them; correlation: of the two requests' scores over the whole catalog; cosine:
between the two request vectors. Means over the {SPLITS} splits.

| language | request vectors | detected | top-{K} overlap (Jaccard) | any shared | score correlation | cosine to English |
|---|---|---|---|---|---|---|
{table}

Top 5 of two of the Chinese requests with the shipped offset (computed from all
{len(REQUESTS_EN)} pairs, these two included):
{chr(10).join(examples)}
"""
    write_section("query-language", "Requests across languages", body,
                  "benchmarks/bench_query_language.py")
    print(body)


if __name__ == "__main__":
    main()
