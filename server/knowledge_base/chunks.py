"""Editing individual chunks by id (the chunk editor): replace text/metadata, delete, or add to a file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.db import repository as repo
from server.db.engine import session_scope
from server.db.models import KnowledgeBase
from server.errors import FileNotInKnowledgeBase, InvalidInput, ZhikuError
from server.knowledge_base.context import KbContext
from server.knowledge_base.writer import load_kb
from server.retrieval.sync import keyword_added, keyword_removed
from server.vectorstores.base import VectorStore

Failures = dict[str, ZhikuError]


def update_chunks_by_id(ctx: KbContext, kb_name: str, docs: Mapping[str, Any]) -> Failures:
    """Apply {id: {"page_content", "metadata"} | None}; chunks not named are left exactly as they were.

    A null value deletes that chunk. An unknown id whose metadata names a file of the KB (`source`) adds a new
    chunk to that file. Edited files are marked custom_docs so a later update_docs keeps the edits.
    """
    failed: Failures = {}
    kb = load_kb(ctx, kb_name)
    with ctx.locks(kb_name):
        store = ctx.store_for(kb)
        try:
            for chunk_id, doc in docs.items():
                try:
                    _apply(ctx, kb, store, chunk_id, doc)
                except ZhikuError as error:
                    failed[chunk_id] = error
        finally:
            store.flush()
    return failed


def _apply(ctx: KbContext, kb: KnowledgeBase, store: VectorStore, chunk_id: str, doc: Any) -> None:
    with session_scope(ctx.sessions) as session:
        existing = repo.chunks_by_vs_id(session, kb_id=kb.id, vs_ids=[chunk_id]).get(chunk_id)
        if doc is None:
            if existing is None:
                raise InvalidInput(f"chunk {chunk_id} is not in knowledge base {kb.name!r}")
            store.delete([chunk_id])
            keyword_removed(ctx.data_dir, kb.name, [chunk_id])
            file = existing.file
            session.delete(existing)
            session.flush()
            repo.refresh_chunk_count(session, file=file)
            file.custom_docs = True
            return
        text, metadata = _parse_doc(chunk_id, doc)
        found = (
            existing.file if existing else repo.get_file(session, kb_id=kb.id, file_name=str(metadata.get("source")))
        )
        if found is None:
            raise FileNotInKnowledgeBase(
                f"chunk {chunk_id} is unknown; to add a chunk, give metadata.source naming a file of the KB"
            )
        file = found
        metadata = {**(existing.meta if existing else {}), **metadata, "source": file.file_name}
        vector = ctx.embeddings.embed_documents(kb.embed_model, [text])
        store.delete([chunk_id])
        store.add([text], vector, [metadata], ids=[chunk_id])
        keyword_added(ctx.data_dir, kb.name, [chunk_id], [text])
        if existing is not None:
            existing.meta = metadata
        else:
            repo.add_chunks(session, kb_id=kb.id, file_id=file.id, vs_ids=[chunk_id], metas=[metadata])
            session.flush()
        repo.refresh_chunk_count(session, file=file)
        file.custom_docs = True


def _parse_doc(chunk_id: str, doc: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(doc, dict):
        raise InvalidInput(f"docs[{chunk_id!r}] must be an object with page_content, or null to delete the chunk")
    text = doc.get("page_content")
    metadata = doc.get("metadata") or {}
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"docs[{chunk_id!r}].page_content must be non-empty text")
    if not isinstance(metadata, dict):
        raise InvalidInput(f"docs[{chunk_id!r}].metadata must be an object")
    return text, metadata
