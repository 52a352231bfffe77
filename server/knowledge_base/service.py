"""Knowledge-base level operations: create, delete, describe, search, locate files."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from server.db import repository as repo
from server.db.engine import session_scope
from server.db.models import Chunk, KnowledgeBase, iso_utc
from server.errors import FileNotInKnowledgeBase, InvalidInput, StoreUnavailable, UnknownVectorStore
from server.knowledge_base.context import KbContext
from server.knowledge_base.paths import content_file, kb_dir, validate_file_path, validate_kb_name
from server.knowledge_base.writer import load_kb
from server.retrieval.search import KbHit, SearchRequest, check_mode, search_kbs
from server.retrieval.sync import keyword_index
from server.vectorstores.factory import SUPPORTED_VS_TYPES, create_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KbSummary:
    name: str
    info: str
    vs_type: str
    embed_model: str
    file_count: int
    created_at: str
    search_mode: str = ""  # "" = the global default (kb.search_mode)


@dataclass(frozen=True)
class SearchResult:
    id: str
    page_content: str
    metadata: dict[str, Any]
    score: float | None


def _result(item: KbHit, *, tag_kb: bool) -> SearchResult:
    hit = item.hit
    metadata = {**hit.metadata, "kb": item.kb} if tag_kb else hit.metadata
    return SearchResult(hit.id, hit.text, metadata, hit.score)


def check_search_params(top_k: int, score_threshold: float) -> None:
    if top_k <= 0:
        raise InvalidInput(f"top_k must be a positive number of chunks, got {top_k}")
    if not 0.0 <= score_threshold <= 1.0:
        raise InvalidInput(
            f"score_threshold must be within [0, 1], got {score_threshold}: scores are similarities where "
            "higher is closer (Chatchat 0.2 used distances up to 2; use e.g. 0.5 instead)"
        )


class KnowledgeBaseService:
    def __init__(self, ctx: KbContext) -> None:
        self.ctx = ctx

    def list_names(self) -> list[str]:
        with session_scope(self.ctx.sessions) as session:
            return [kb.name for kb in repo.list_kbs(session)]

    def list_details(self) -> list[KbSummary]:
        with session_scope(self.ctx.sessions) as session:
            return [self._summary(session, kb) for kb in repo.list_kbs(session)]

    def describe(self, name: str) -> KbSummary:
        with session_scope(self.ctx.sessions) as session:
            return self._summary(session, repo.require_kb(session, name))

    @staticmethod
    def _summary(session: Any, kb: KnowledgeBase) -> KbSummary:
        count = repo.count_files(session, kb_id=kb.id)
        return KbSummary(kb.name, kb.info, kb.vs_type, kb.embed_model, count, iso_utc(kb.created_at), kb.search_mode)

    def create(
        self,
        name: str,
        *,
        vs_type: str | None = None,
        embed_model: str | None = None,
        info: str = "",
        search_mode: str = "",
    ) -> KbSummary:
        validate_kb_name(name)
        if search_mode:
            check_mode(search_mode)
        vs_type = vs_type or self.ctx.default_vs_type
        if vs_type not in SUPPORTED_VS_TYPES:
            raise UnknownVectorStore(f"unknown vector_store_type {vs_type!r}; use one of {list(SUPPORTED_VS_TYPES)}")
        embed_model = embed_model or self.ctx.default_embed_model
        self.ctx.embeddings.get(embed_model)  # raises UnknownEmbeddingModel with the configured names
        with self.ctx.locks(name), session_scope(self.ctx.sessions) as session:
            kb = repo.add_kb(session, name=name, info=info, vs_type=vs_type, embed_model=embed_model)
            kb.search_mode = search_mode
            # The store is created inside the transaction: if it fails, no registry row is left behind.
            store = create_store(self.ctx.store_spec(kb), self.ctx.store_options)
            try:
                store.create()
            finally:
                store.close()
            (kb_dir(self.ctx.data_dir, name) / "content").mkdir(parents=True, exist_ok=True)
            keyword_index(self.ctx.data_dir, name).create()
            return self._summary(session, kb)

    def delete(self, name: str) -> None:
        validate_kb_name(name)
        with self.ctx.locks(name):
            kb = load_kb(self.ctx, name)
            self.ctx.stores.evict(kb.name)
            create_store(self.ctx.store_spec(kb), self.ctx.store_options).drop()
            with session_scope(self.ctx.sessions) as session:
                repo.delete_kb(session, repo.require_kb(session, name))
            shutil.rmtree(kb_dir(self.ctx.data_dir, name), ignore_errors=True)
        log.info("deleted knowledge base %s", name)

    def set_search_mode(self, name: str, search_mode: str) -> str:
        """Set the KB's default search mode; "" falls back to the global kb.search_mode."""
        if search_mode:
            check_mode(search_mode)
        with session_scope(self.ctx.sessions) as session:
            kb = repo.require_kb(session, name)
            kb.search_mode = search_mode
            return kb.search_mode

    def update_info(self, name: str, info: str) -> str:
        with session_scope(self.ctx.sessions) as session:
            kb = repo.require_kb(session, name)
            kb.info = info
            return kb.info

    def file_path(self, name: str, file_name: str) -> Path:
        """The content file to download; raises when it is not in the KB folder."""
        load_kb(self.ctx, name)
        path = content_file(self.ctx.data_dir, name, file_name)
        if not path.is_file():
            raise FileNotInKnowledgeBase(f"{file_name} is not in knowledge base {name!r}; see list_files")
        return path

    def search(
        self,
        name: str | Sequence[str],
        query: str,
        *,
        top_k: int,
        score_threshold: float,
        file_name: str = "",
        metadata: Mapping[str, Any] | None = None,
        search_mode: str | None = None,
        fetch_k: int | None = None,
    ) -> list[SearchResult]:
        """Chunks closest to `query`; without a query, the chunks of `file_name` / matching `metadata`.

        With several KB names, results are fused across them and each result's metadata names its "kb".
        """
        check_search_params(top_k, score_threshold)
        if search_mode is not None:
            check_mode(search_mode)
        names = [name] if isinstance(name, str) else list(dict.fromkeys(name))
        if not names:
            raise InvalidInput("knowledge_base_name is an empty list; name at least one knowledge base")
        kbs = [load_kb(self.ctx, one) for one in names]
        where = dict(metadata or {})
        if file_name:
            where["source"] = validate_file_path(file_name)
        if not query.strip():
            return self._list_chunks(kbs[0], where) if where and len(kbs) == 1 else []
        request = SearchRequest(query, top_k, score_threshold, search_mode, fetch_k, where or None)
        try:
            found = search_kbs(self.ctx, kbs, request, self.ctx.reranker)
        except StoreUnavailable:
            # A rebuild may have switched a KB to a new store and dropped the old one while this search was
            # reading it: that is no outage, so search the new store. A store that is really down raises again.
            moved = [load_kb(self.ctx, one) for one in names]
            if [_store_key(kb) for kb in moved] == [_store_key(kb) for kb in kbs]:
                raise
            found = search_kbs(self.ctx, moved, request, self.ctx.reranker)
        return [_result(item, tag_kb=len(kbs) > 1) for item in found]

    def _list_chunks(self, kb: KnowledgeBase, where: Mapping[str, Any]) -> list[SearchResult]:
        with session_scope(self.ctx.sessions) as session:
            rows = session.execute(select(Chunk.vs_id, Chunk.meta).where(Chunk.kb_id == kb.id).order_by(Chunk.id))
            ids = [vs_id for vs_id, meta in rows if all(meta.get(k) == v for k, v in where.items())]
        chunks = self.ctx.store_for(kb).get(ids)
        return [SearchResult(chunk.id, chunk.text, chunk.metadata, None) for chunk in chunks]


def _store_key(kb: KnowledgeBase) -> tuple[str, str, str]:
    """What names a KB's vectors; a rebuild changes it."""
    return kb.vs_type, kb.embed_model, kb.vs_collection
