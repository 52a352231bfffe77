"""The configured embedding models, each created once, with an LRU cache of query vectors."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from server.embeddings.base import Embedder, Vectors
from server.embeddings.batcher import QueryBatcher
from server.embeddings.config import EmbedModelConfig
from server.embeddings.factory import create_embedder
from server.errors import FileTooLarge, UnknownEmbeddingModel

EmbedderFactory = Callable[[str, EmbedModelConfig], Embedder]


@dataclass(frozen=True)
class EmbedLimits:
    """Bounds on what a client may ask to embed (`embed_texts`); ingestion's own chunks are bounded by chunk_size."""

    max_chars: int  # one text
    max_total_chars: int  # all texts of one request
    max_query_chars: int  # one text embedded as a query (the query embedder serves every search)


class EmbeddingPool:
    """Thread-safe access to the embedders named in `embed_models`.

    Embedders are created on first `get` (creation is cheap; models load on first use). Query vectors are
    cached per (model, text) so a repeated question skips the model; `query_cache_size=0` turns that off.
    Queries of concurrent searches are embedded together, up to `query_batch` per call (1: one at a time).
    `factory` exists for tests and extensions.
    """

    def __init__(
        self,
        configs: Mapping[str, EmbedModelConfig],
        *,
        query_cache_size: int = 2048,
        factory: EmbedderFactory = create_embedder,
        limits: EmbedLimits | None = None,
        query_batch: int = 32,
    ) -> None:
        if query_cache_size < 0:
            raise ValueError(f"query_cache_size must be >= 0, got {query_cache_size}")
        self._configs = dict(configs)
        self._factory = factory
        self._embedders: dict[str, Embedder] = {}
        self._create_lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], Vectors] = OrderedDict()
        self._cache_size = query_cache_size
        self._cache_lock = threading.Lock()
        self._limits = limits
        if query_batch < 1:
            raise ValueError(f"query_batch must be at least 1, got {query_batch}")
        self._query_batch = query_batch
        self._batchers: dict[str, QueryBatcher] = {}

    def names(self) -> list[str]:
        return sorted(self._configs)

    def get(self, name: str) -> Embedder:
        """The embedder for `name`, created on first call; raises UnknownEmbeddingModel."""
        embedder = self._embedders.get(name)
        if embedder is not None:
            return embedder
        config = self._configs.get(name)
        if config is None:
            known = ", ".join(self.names()) or "none"
            raise UnknownEmbeddingModel(
                f"unknown embedding model {name!r}; configured: {known} (see `embed_models` in settings)"
            )
        with self._create_lock:
            if name not in self._embedders:
                created = self._factory(name, config)
                parallel = config.query_parallelism()
                self._batchers[name] = QueryBatcher(created.embed_queries, self._query_batch, parallel=parallel)
                self._embedders[name] = created
            return self._embedders[name]

    def embed_documents(self, name: str, texts: Sequence[str]) -> Vectors:
        return self.get(name).embed_documents(texts)

    def embed_query(self, name: str, text: str) -> Vectors:
        """The query vector, from the cache when this (model, text) was seen recently. Returns a copy."""
        embedder = self.get(name)
        key = (name, text)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached.copy()
        # Concurrent searches share one batched call; one at a time, the embedder's own single-query path.
        vector = self._batchers[name].embed(text) if self._query_batch > 1 else embedder.embed_query(text)
        if self._cache_size:
            with self._cache_lock:
                self._cache[key] = vector.copy()
                self._cache.move_to_end(key)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return vector

    def embed_texts(self, name: str, texts: Sequence[str], *, to_query: bool = False) -> list[list[float]]:
        """A client's texts as vectors in plain lists (for JSON); see `embed_checked`."""
        return [row.tolist() for row in self.embed_checked(name, texts, to_query=to_query)]

    def embed_checked(self, name: str, texts: Sequence[str], *, to_query: bool = False) -> Vectors:
        """A client's texts embedded as queries or as documents, once they are within the limits (`check`)."""
        self.check(texts, to_query=to_query)
        if to_query and texts:
            return np.stack([self.embed_query(name, text).reshape(-1) for text in texts])
        return self.embed_documents(name, texts)

    def check(self, texts: Sequence[str], *, to_query: bool = False) -> None:
        """Refuse texts over the limits (FileTooLarge, naming the setting) before any is embedded."""
        if self._limits is None:
            return
        most = self._limits.max_query_chars if to_query else self._limits.max_chars
        setting = "limits.max_query_chars" if to_query else "limits.max_embed_chars"
        for index, text in enumerate(texts):
            if len(text) > most:
                raise FileTooLarge(
                    f"text {index} has {len(text):,} characters, more than {most:,} ({setting}); split it: models "
                    "read about 500 tokens at a time, so a longer text is no better embedded as one"
                )
        total = sum(len(text) for text in texts)
        if total > self._limits.max_total_chars:
            raise FileTooLarge(
                f"{total:,} characters in one request, more than {self._limits.max_total_chars:,} "
                "(limits.max_embed_total_chars); send fewer texts at a time"
            )

    def dim(self, name: str) -> int:
        return self.get(name).dim
