"""An in-memory vector store: exact cosine search over a numpy matrix; nothing is written anywhere.

It holds the temporary knowledge of /chat/file_chat (a few uploaded files, forgotten after an hour), so it is not
offered for knowledge bases. Reads share a read lock; writes take the write lock.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from server.errors import DuplicateChunkId, InvalidInput, StoreMissing
from server.vectorstores.base import Hit, StoredChunk, Vectors, cosine_to_score
from server.vectorstores.checks import checked_batch, metadata_matches, query_row
from server.vectorstores.rwlock import ReadWriteLock

if TYPE_CHECKING:
    from server.vectorstores.registry import StoreOptions, StoreSpec


class MemoryStore:
    def __init__(self, dim: int, *, name: str = "temporary") -> None:
        if dim <= 0:
            raise InvalidInput(f"vector dimension must be positive, got {dim}")
        self._dim = dim
        self._name = name
        self._lock = ReadWriteLock()
        self._exists = False
        self._matrix = np.zeros((0, dim), np.float32)
        self._ids: list[str] = []
        self._texts: list[str] = []
        self._metadatas: list[dict[str, Any]] = []
        self._row: dict[str, int] = {}

    @property
    def dim(self) -> int:
        return self._dim

    def create(self) -> None:
        with self._lock.write():
            self._exists = True

    def drop(self) -> None:
        with self._lock.write():
            self._clear()
            self._exists = False

    def add(
        self,
        texts: Sequence[str],
        vectors: Vectors,
        metadatas: Sequence[Mapping[str, Any]],
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        batch = checked_batch(texts, vectors, metadatas, ids, self._dim)
        with self._lock.write():
            self._check_exists()
            clash = [i for i in batch.ids if i in self._row]
            if clash:
                raise DuplicateChunkId(f"{len(clash)} ids already exist in the store, e.g. {clash[:3]}")
            for chunk_id in batch.ids:
                self._row[chunk_id] = len(self._ids)
                self._ids.append(chunk_id)
            self._matrix = np.vstack([self._matrix, batch.vectors])
            self._texts += batch.texts
            self._metadatas += batch.metadatas
        return batch.ids

    def delete(self, ids: Sequence[str]) -> int:
        with self._lock.write():
            self._check_exists()
            gone = {self._row[i] for i in ids if i in self._row}
            if gone:
                keep = [row for row in range(len(self._ids)) if row not in gone]
                self._matrix = self._matrix[keep]
                self._ids = [self._ids[row] for row in keep]
                self._texts = [self._texts[row] for row in keep]
                self._metadatas = [self._metadatas[row] for row in keep]
                self._row = {chunk_id: row for row, chunk_id in enumerate(self._ids)}
        return len(gone)

    def search(
        self,
        vector: Vectors,
        top_k: int,
        score_threshold: float = 0.0,
        where: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        query = query_row(vector, self._dim, top_k)[0]
        with self._lock.read():
            self._check_exists()
            rows = [row for row, meta in enumerate(self._metadatas) if metadata_matches(meta, where)]
            cosines = self._matrix[rows] @ query if rows else np.zeros(0, np.float32)
            best = np.argsort(-cosines, kind="stable")[:top_k]
            hits = [self._hit(rows[index], float(cosines[index])) for index in best]
        return [hit for hit in hits if hit.score >= score_threshold]

    def get(self, ids: Sequence[str]) -> list[StoredChunk]:
        with self._lock.read():
            self._check_exists()
            rows = [self._row[i] for i in ids if i in self._row]
            return [StoredChunk(self._ids[r], self._texts[r], copy.deepcopy(self._metadatas[r])) for r in rows]

    def vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        with self._lock.read():
            self._check_exists()
            return {i: self._matrix[self._row[i]].copy() for i in ids if i in self._row}

    def count(self) -> int:
        with self._lock.read():
            self._check_exists()
            return len(self._ids)

    def flush(self) -> None:
        """Nothing to persist."""

    def close(self) -> None:
        """Nothing to release; the data stays until the object is dropped."""

    def _hit(self, row: int, cosine: float) -> Hit:
        return Hit(self._ids[row], self._texts[row], copy.deepcopy(self._metadatas[row]), cosine_to_score(cosine))

    def _clear(self) -> None:
        self._matrix = np.zeros((0, self._dim), np.float32)
        self._ids, self._texts, self._metadatas, self._row = [], [], [], {}

    def _check_exists(self) -> None:
        if not self._exists:
            raise StoreMissing(f"the in-memory store {self._name!r} was dropped or never created")


def open_store(spec: StoreSpec, options: StoreOptions) -> MemoryStore:
    """The registry's entry point: a new, empty store each time (in-memory stores are not shared)."""
    return MemoryStore(spec.dim, name=spec.kb_name)
