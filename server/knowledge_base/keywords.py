"""Keeping each knowledge base's keyword index in step with its vector store.

Write paths call `added` / `removed` under the KB lock. A KB without an index file (made before keyword search
existed) is left alone by them, and one written by an older tokenizer is removed by them; the index is then built
from the store on the first keyword or hybrid search (`ensure`), or by a rebuild.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence

from server.db.models import KnowledgeBase
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.locks import KbLocks
from server.knowledge_base.storage import KbStorage
from server.retrieval.keyword_index import KeywordIndex

_BUILD_BATCH = 500


class KeywordIndexes:
    def __init__(self, catalog: KbCatalog, storage: KbStorage, locks: KbLocks) -> None:
        self._catalog = catalog
        self._storage = storage
        self._locks = locks

    def index(self, kb_name: str, collection: str) -> KeywordIndex:
        """The index of one collection of the KB (the registry's `vs_collection`), whether or not it exists yet."""
        return KeywordIndex(self._storage.keyword_file(kb_name, collection))

    def added(self, kb_name: str, collection: str, ids: Sequence[str], texts: Sequence[str]) -> None:
        index = self._current_or_none(kb_name, collection)
        if index is not None:
            index.add(ids, texts)

    def removed(self, kb_name: str, collection: str, ids: Sequence[str]) -> None:
        index = self._current_or_none(kb_name, collection)
        if index is not None:
            index.delete(ids)

    def ensure(self, kb: KnowledgeBase) -> KeywordIndex:
        """The KB's keyword index, built once from the store's chunks when the file does not exist yet."""
        index = self.index(kb.name, kb.vs_collection)
        if index.is_current():
            return index
        with self._locks(kb.name):
            if not index.is_current():
                self._build(kb, index)
        return index

    def _build(self, kb: KnowledgeBase, index: KeywordIndex) -> None:
        """Fill a file beside the index, then rename it into place: a crash leaves no half-built index."""
        ids = self._catalog.chunk_ids(kb)
        built = KeywordIndex(index.path.with_name(f".{index.path.name}.{uuid.uuid4().hex[:8]}.building"))
        store = self._storage.store(kb)
        try:
            built.create()
            for start in range(0, len(ids), _BUILD_BATCH):
                chunks = store.get(ids[start : start + _BUILD_BATCH])
                built.add([chunk.id for chunk in chunks], [chunk.text for chunk in chunks])
            os.replace(built.path, index.path)
        except BaseException:
            built.drop()
            raise

    def _current_or_none(self, kb_name: str, collection: str) -> KeywordIndex | None:
        """The index if it is up to date; an outdated one is deleted, to be rebuilt by the next search."""
        index = self.index(kb_name, collection)
        if index.is_current():
            return index
        index.drop()
        return None
