"""Knowledge for one chat: files uploaded with upload_temp_docs, held in memory and forgotten after a while.

They never appear in list_knowledge_bases and nothing is written to disk. Expired entries are dropped lazily,
whenever the store is used.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from server.embeddings import EmbeddingPool
from server.errors import TempKnowledgeNotFound
from server.knowledge_base.ingest import Failures, FilePreparer, SourceFile
from server.knowledge_base.params import Chunking, ChunkParams, KbDefaults
from server.knowledge_base.search import SearchResult, check_search_params
from server.knowledge_base.uploads import Upload, stage_uploads
from server.vectorstores.memory_store import MemoryStore

TEMP_KNOWLEDGE_TTL_S = 3600.0
"""Seconds an uploaded set of files stays usable after its last upload or chat (one hour)."""


@dataclass
class TempKnowledge:
    id: str
    store: MemoryStore
    files: list[str] = field(default_factory=list)
    last_used: float = 0.0


class TempKnowledgeStore:
    """Temporary in-memory knowledge, by id; `clock` exists for tests of expiry."""

    def __init__(
        self,
        embeddings: EmbeddingPool,
        preparer: FilePreparer,
        defaults: KbDefaults,
        *,
        max_upload_bytes: int,
        ttl_s: float = TEMP_KNOWLEDGE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._embeddings = embeddings
        self._preparer = preparer
        self._defaults = defaults
        self.embed_model = defaults.embed_model
        self._max_upload_bytes = max_upload_bytes
        self._ttl_s = ttl_s
        self._clock = clock
        self._items: dict[str, TempKnowledge] = {}
        self._lock = threading.Lock()

    def upload(self, prev_id: str, uploads: Sequence[Upload], chunking: Chunking | None = None) -> tuple[str, Failures]:
        """Save the uploaded files to a temporary folder, then `add_files` them; the folder is removed after."""
        params = self._defaults.chunk_params(chunking)
        folder = Path(tempfile.mkdtemp(prefix="zhiku-temp-"))
        try:
            return self.add_files(prev_id, stage_uploads(folder, uploads, self._max_upload_bytes), params)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def add_files(self, prev_id: str, files: Sequence[SourceFile], params: ChunkParams) -> tuple[str, Failures]:
        """Parse and embed `files` into `prev_id`'s knowledge, or into a new one when it is empty; returns the id
        and the files that failed with their reasons."""
        item = self._get(prev_id) if prev_id else self._new()
        prepared, failed = self._preparer.prepare(files, params)
        self._preparer.embed(self.embed_model, prepared)
        for one in prepared:
            assert one.vectors is not None
            item.store.add(one.texts, one.vectors, one.metadatas)
            item.files.append(one.record.file_name)
        return item.id, failed

    def search(
        self, knowledge_id: str, query: str, *, top_k: int | None = None, score_threshold: float | None = None
    ) -> list[SearchResult]:
        """The chunks closest to `query`; top_k and score_threshold default to the settings' kb values."""
        top_k, score_threshold = self._defaults.search_limits(top_k, score_threshold)
        check_search_params(top_k, score_threshold)
        self._defaults.check_query(query)
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
        store = MemoryStore(self._embeddings.dim(self.embed_model), name=f"temporary knowledge {item_id}")
        store.create()
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
