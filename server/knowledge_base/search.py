"""Searching knowledge bases by name: resolves each KB's store, keyword index and mode for the searcher."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import select

from server.db import repository as repo
from server.db.models import Chunk, KnowledgeBase
from server.embeddings import EmbeddingPool
from server.errors import InvalidInput, StoreMissing, StoreUnavailable, ZhikuError
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.file_filter import FileFacts, FileFilter, allowed_sources
from server.knowledge_base.keywords import KeywordIndexes
from server.knowledge_base.params import KbDefaults
from server.knowledge_base.paths import validate_file_path
from server.knowledge_base.storage import KbStorage
from server.retrieval.modes import SearchMode, check_mode
from server.retrieval.search import KbHit, Searcher, SearchRequest, SearchTarget
from server.vectorstores.base import AnyOf
from server.vectorstores.checks import metadata_matches

log = logging.getLogger(__name__)

WARM_UP_QUERY = "warm up 预热"  # both scripts, so a keyword index's tokenizers (jieba's dictionary) load too


@dataclass(frozen=True)
class SearchResult:
    id: str
    page_content: str
    metadata: dict[str, Any]
    score: float | None


def check_search_params(top_k: int, score_threshold: float) -> None:
    if top_k <= 0:
        raise InvalidInput(f"top_k must be a positive number of chunks, got {top_k}")
    if not 0.0 <= score_threshold <= 1.0:
        raise InvalidInput(
            f"score_threshold must be within [0, 1], got {score_threshold}: scores are similarities where "
            "higher is closer (Chatchat 0.2 used distances up to 2; use e.g. 0.5 instead)"
        )


@dataclass(frozen=True)
class SearchQuery:
    """A search as a request gives it; None means the default from the settings (or the KB's own mode)."""

    query: str
    top_k: int | None = None
    score_threshold: float | None = None
    file_name: str = ""
    metadata: Mapping[str, Any] | None = None
    search_mode: SearchMode | None = None
    fetch_k: int | None = None
    filter: FileFilter | None = None  # which files may answer (disabled files never do)


class SearchService:
    def __init__(
        self,
        catalog: KbCatalog,
        storage: KbStorage,
        keywords: KeywordIndexes,
        embeddings: EmbeddingPool,
        searcher: Searcher,
        defaults: KbDefaults,
    ) -> None:
        self._catalog = catalog
        self._storage = storage
        self._keywords = keywords
        self._embeddings = embeddings
        self._searcher = searcher
        self._defaults = defaults

    def search(self, names: str | Sequence[str], request: SearchQuery) -> list[SearchResult]:
        """Chunks closest to the query; without a query, the chunks of `file_name` / matching `metadata`.

        With several KB names, results are fused across them and each result's metadata names its "kb".
        """
        top_k, threshold = self._defaults.search_limits(request.top_k, request.score_threshold)
        check_search_params(top_k, threshold)
        self._defaults.check_query(request.query)
        if request.search_mode is not None:
            check_mode(request.search_mode)
        unique = [names] if isinstance(names, str) else list(dict.fromkeys(names))
        if not unique:
            raise InvalidInput("knowledge_base_name is an empty list; name at least one knowledge base")
        kbs = [self._catalog.require(one) for one in unique]
        file_name = validate_file_path(request.file_name) if request.file_name else ""
        if not request.query.strip():
            if len(kbs) != 1 or not (request.metadata or file_name):
                return []
            return self._list_chunks(kbs[0], self._where(kbs[0], request, file_name))
        wanted = SearchRequest(request.query, top_k, threshold, request.fetch_k)
        found = self._search(unique, kbs, wanted, request, file_name)
        return [_result(item, tag_kb=len(kbs) > 1) for item in found]

    def warm_up(self, name: str) -> bool:
        """Run one search on the KB so its embedding model, vector index and keyword index are loaded before the
        first user's search, which would otherwise wait seconds for them; False when the KB cannot be searched."""
        try:
            self.search(name, SearchQuery(query=WARM_UP_QUERY, top_k=1))
        except ZhikuError as error:  # the KB's first real search reports the same error to its user
            log.warning("warm-up of knowledge base %r skipped: %s", name, error.message)
            return False
        return True

    def retriever(self, names: str | Sequence[str], request: SearchQuery) -> Callable[[], list[SearchResult]]:
        """A call that runs this search later (chat runs it in a worker thread once the model is resolved)."""
        return partial(self.search, names, request)

    def _where(self, kb: KnowledgeBase, request: SearchQuery, file_name: str) -> dict[str, Any]:
        """The KB's store filter: the request's metadata and the allow-list of files its filter leaves."""
        where: dict[str, Any] = dict(request.metadata or {})
        named = file_name or where.get("source")  # a file asked for by name must also be allowed
        allowed = self._allowed(kb, request.filter)
        if allowed is not None:
            where["source"] = allowed if named is None else AnyOf(allowed.values & {named})
        elif file_name:
            where["source"] = file_name
        return where

    def _allowed(self, kb: KnowledgeBase, wanted: FileFilter | None) -> AnyOf | None:
        """The files that may answer; None (no allow-list) in the common case of no filter and no disabled file."""
        with self._catalog.session() as session:
            if (wanted is None or wanted.empty) and not repo.has_disabled_files(session, kb_id=kb.id):
                return None
            facts = [FileFacts(*row) for row in repo.file_facts(session, kb_id=kb.id)]
        return allowed_sources(facts, wanted)

    def _search(
        self, names: list[str], kbs: list[KnowledgeBase], request: SearchRequest, query: SearchQuery, file_name: str
    ) -> list[KbHit]:
        mode = query.search_mode
        try:
            targets = [self._target(kb, mode, self._where(kb, query, file_name)) for kb in kbs]
            return self._searcher.search(targets, request)
        except (StoreUnavailable, StoreMissing):
            # A rebuild may have switched a KB to a new store and dropped the old one while this search was
            # reading it: that is no outage, so search the new store. A store that is really down raises again.
            moved = [self._catalog.require(one) for one in names]
            if [_store_key(kb) for kb in moved] == [_store_key(kb) for kb in kbs]:
                raise
            targets = [self._target(kb, mode, self._where(kb, query, file_name)) for kb in moved]
            return self._searcher.search(targets, request)

    def _target(self, kb: KnowledgeBase, requested: SearchMode | None, where: Mapping[str, Any]) -> SearchTarget:
        mode = check_mode(requested or kb.search_mode or self._defaults.search_mode)
        keywords = self._keywords.ensure(kb) if mode != "dense" else None
        embed = partial(self._embeddings.embed_query, kb.embed_model)
        return SearchTarget(
            kb.name, mode, self._storage.store(kb), embed, keywords, where or None, model=kb.embed_model
        )

    def _list_chunks(self, kb: KnowledgeBase, where: Mapping[str, Any]) -> list[SearchResult]:
        with self._catalog.session() as session:
            rows = session.execute(select(Chunk.vs_id, Chunk.meta).where(Chunk.kb_id == kb.id).order_by(Chunk.id))
            ids = [vs_id for vs_id, meta in rows if metadata_matches(meta, where)]
        chunks = self._storage.store(kb).get(ids)
        return [SearchResult(chunk.id, chunk.text, chunk.metadata, None) for chunk in chunks]


def _result(item: KbHit, *, tag_kb: bool) -> SearchResult:
    hit = item.hit
    metadata = {**hit.metadata, "kb": item.kb} if tag_kb else hit.metadata
    return SearchResult(hit.id, hit.text, metadata, hit.score)


def _store_key(kb: KnowledgeBase) -> tuple[str, str, str]:
    """What names a KB's vectors; a rebuild changes it."""
    return kb.vs_type, kb.embed_model, kb.vs_collection
