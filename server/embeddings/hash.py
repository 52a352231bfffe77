"""A deterministic, model-free embedder for tests and benchmarks.

Features are lower-cased word tokens plus, for CJK text, character unigrams and bigrams. Each feature
is hashed with BLAKE2b (stable across processes, unlike `hash()`) into one of `dim` buckets with a ±1
sign, and the counts are L2-normalised. Texts that share words or characters therefore get a higher
cosine than unrelated ones; there is no semantics beyond that. Queries and documents are embedded alike.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from server.embeddings._vectors import empty
from server.embeddings.base import Vectors

# Kana, CJK ideographs (incl. extension A and compatibility) and Hangul syllables.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(f"([{_CJK}]+)|([^\\W_{_CJK}]+)")


@lru_cache(maxsize=65536)
def _feature_hash(feature: str) -> int:
    return int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")


def features(text: str) -> list[str]:
    """The hashed features of one text (exposed for tests)."""
    found: list[str] = []
    for cjk, word in _TOKEN.findall(text.lower()):
        if word:
            found.append("w:" + word)
            continue
        found.extend("c:" + char for char in cjk)
        found.extend("b:" + cjk[i : i + 2] for i in range(len(cjk) - 1))
    return found


class HashEmbedder:
    """Bag-of-hashed-features vectors of size `dim`; see the module docstring."""

    def __init__(self, name: str, *, dim: int) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.name = name
        self._dim = dim
        # What an all-zero text (empty, punctuation only) maps to: any fixed unit vector will do.
        self._fallback = np.full(dim, 1.0 / np.sqrt(dim), dtype=np.float32)

    @property
    def dim(self) -> int:
        return self._dim

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return empty(self._dim)
        return np.stack([self._embed(text) for text in texts])

    def embed_query(self, text: str) -> Vectors:
        return self._embed(text)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self.embed_documents(texts)

    def _embed(self, text: str) -> Vectors:
        hashes = np.fromiter((_feature_hash(f) for f in features(text)), dtype=np.uint64)
        vector = np.zeros(self._dim, dtype=np.float32)
        if hashes.size:
            buckets = (hashes % np.uint64(self._dim)).astype(np.intp)
            signs = np.where((hashes >> np.uint64(63)) == 1, -1.0, 1.0).astype(np.float32)
            np.add.at(vector, buckets, signs)
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            return self._fallback.copy()
        return vector / np.float32(norm)
