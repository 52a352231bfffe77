"""Knowledge for one chat: files uploaded with upload_temp_docs, held in memory and forgotten after a while.

They never appear in list_knowledge_bases and nothing is written to disk. Expired entries are dropped lazily,
whenever the store is used.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from server.embeddings import EmbeddingPool
from server.errors import TempKnowledgeNotFound, ZhikuError
from server.knowledge_base.ingest import ChunkParams, embed_prepared, prepare_many
from server.knowledge_base.service import SearchResult, check_search_params
from server.vectorstores.faiss_store import FaissStore

TEMP_KNOWLEDGE_TTL_S = 3600.0
"""Seconds an uploaded set of files stays usable after its last upload or chat (one hour)."""

_NEVER_WRITTEN = Path("/nonexistent/zhiku-temp-knowledge")  # these FAISS stores are never flushed to disk


@dataclass
class TempKnowledge:
    id: str
    store: FaissStore
    files: list[str] = field(default_factory=list)
    last_used: float = 0.0


class TempKnowledgeStore:
    """Temporary in-memory knowledge, by id; `clock` exists for tests of expiry."""

    def __init__(
        self,
        embeddings: EmbeddingPool,
        embed_model: str,
        *,
        parse_workers: int = 4,
        ttl_s: float = TEMP_KNOWLEDGE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._embeddings = embeddings
        self.embed_model = embed_model
        self._parse_workers = parse_workers
        self._ttl_s = ttl_s
        self._clock = clock
        self._items: dict[str, TempKnowledge] = {}
        self._lock = threading.Lock()

    def add_files(
        self, prev_id: str, files: Sequence[tuple[Path, str]], params: ChunkParams
    ) -> tuple[str, dict[str, ZhikuError]]:
        """Parse and embed `files` (path, display name) into `prev_id`'s knowledge, or into a new one when it is
        empty; returns the id and the files that failed with their reasons."""
        item = self._get(prev_id) if prev_id else self._new()
        prepared, failed = prepare_many(list(files), params, self._parse_workers)
        embed_prepared(self._embeddings, self.embed_model, prepared)
        for one in prepared:
            assert one.vectors is not None
            item.store.add(one.texts, one.vectors, one.metadatas)
            item.files.append(one.record.file_name)
        return item.id, failed

    def search(self, knowledge_id: str, query: str, *, top_k: int, score_threshold: float) -> list[SearchResult]:
        check_search_params(top_k, score_threshold)
        store = self._get(knowledge_id).store
        vector = self._embeddings.embed_query(self.embed_model, query)
        hits = store.search(vector, top_k, score_threshold)
        return [SearchResult(hit.id, hit.text, hit.metadata, hit.score) for hit in hits]

    def count(self) -> int:
        with self._lock:
            self._expire()
            return len(self._items)

    def _new(self) -> TempKnowledge:
        item_id = uuid.uuid4().hex
        store = FaissStore(_NEVER_WRITTEN / item_id, self._embeddings.dim(self.embed_model), kb_name="temp")
        item = TempKnowledge(item_id, store, last_used=self._clock())
        with self._lock:
            self._expire()
            self._items[item_id] = item
        return item

    def _get(self, knowledge_id: str) -> TempKnowledge:
        with self._lock:
            self._expire()
            item = self._items.get(knowledge_id)
            if item is None:
                minutes = round(self._ttl_s / 60)
                raise TempKnowledgeNotFound(
                    f"no uploaded files with knowledge_id {knowledge_id!r}: they expire {minutes} minutes after "
                    "their last use; upload them again with /knowledge_base/upload_temp_docs"
                )
            item.last_used = self._clock()
            return item

    def _expire(self) -> None:
        """Caller holds the lock."""
        deadline = self._clock() - self._ttl_s
        for item_id in [key for key, item in self._items.items() if item.last_used < deadline]:
            del self._items[item_id]
