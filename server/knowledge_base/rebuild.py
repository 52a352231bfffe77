"""Rebuilding a KB's vectors from its content folder into a fresh store, then switching over in one step.

Searches keep using the old store until the switch; writes to the KB wait for the rebuild (the KB lock).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete

from server.db import repository as repo
from server.db.engine import session_scope
from server.db.models import KnowledgeBase, KnowledgeFile, new_collection_name
from server.errors import InvalidInput, ZhikuError
from server.knowledge_base.context import KbContext
from server.knowledge_base.ingest import ChunkParams, PreparedFile, embed_prepared, prepare_custom, prepare_file
from server.knowledge_base.paths import content_file, list_content_files, vector_dir
from server.knowledge_base.writer import load_kb
from server.retrieval.keyword_index import KeywordIndex
from server.retrieval.sync import building_keyword_index, swap_keyword_index
from server.vectorstores.base import VectorStore
from server.vectorstores.factory import StoreSpec, create_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RebuildProgress:
    total: int
    finished: int
    doc: str
    code: int = 200
    msg: str = ""


@dataclass(frozen=True)
class RebuildTarget:
    vs_type: str | None = None
    embed_model: str | None = None


def recreate_vector_store(
    ctx: KbContext,
    kb_name: str,
    *,
    params: ChunkParams,
    target: RebuildTarget = RebuildTarget(),
    allow_empty_kb: bool = True,
    on_progress: Callable[[RebuildProgress], None] = lambda _: None,
) -> dict[str, str]:
    """Rebuild every file of the KB; returns {file_name: reason} for files that could not be included."""
    with ctx.locks(kb_name):
        kb = load_kb(ctx, kb_name)
        vs_type = target.vs_type or kb.vs_type
        model = target.embed_model or kb.embed_model
        ctx.embeddings.get(model)
        names = list_content_files(ctx.data_dir, kb_name)
        custom = _custom_files(ctx, kb)
        if not names and not custom and not allow_empty_kb:
            raise InvalidInput(f"knowledge base {kb_name!r} has no files to rebuild from (allow_empty_kb=false)")
        building = vector_dir(ctx.data_dir, kb_name, model).with_name(f".building-{uuid.uuid4().hex[:8]}")
        spec = ctx.store_spec(
            kb, vs_type=vs_type, embed_model=model, directory=building, collection=new_collection_name()
        )
        store = create_store(spec, ctx.store_options)
        keywords = building_keyword_index(ctx.data_dir, kb_name)
        try:
            store.create()
            done, failed = _fill(ctx, kb, store, model, names, custom, params, on_progress)
            store.flush()
            store.close()
            keywords.create()
            for prepared, ids in done:
                keywords.add(ids, prepared.texts)
            _switch(ctx, kb, spec, done, keywords)
        except BaseException:
            store.close()
            store.drop()
            keywords.drop()
            raise
    return failed


def _custom_files(ctx: KbContext, kb: KnowledgeBase) -> dict[str, list[dict[str, Any]]]:
    """Hand-made chunks cannot be re-parsed from a file, so they are carried over from the current store."""
    with session_scope(ctx.sessions) as session:
        rows = [row for row in repo.list_files(session, kb_id=kb.id) if row.custom_docs]
        ids = {row.file_name: repo.file_vs_ids(session, file_id=row.id) for row in rows}
    if not ids:
        return {}
    store = ctx.store_for(kb)
    return {
        name: [{"page_content": c.text, "metadata": c.metadata} for c in store.get(chunk_ids)]
        for name, chunk_ids in ids.items()
    }


def _fill(
    ctx: KbContext,
    kb: KnowledgeBase,
    store: VectorStore,
    model: str,
    names: list[str],
    custom: dict[str, list[dict[str, Any]]],
    params: ChunkParams,
    on_progress: Callable[[RebuildProgress], None],
) -> tuple[list[tuple[PreparedFile, list[str]]], dict[str, str]]:
    all_names = sorted(set(names) | set(custom))
    done: list[tuple[PreparedFile, list[str]]] = []
    failed: dict[str, str] = {}
    for index, name in enumerate(all_names, start=1):
        path = content_file(ctx.data_dir, kb.name, name)
        try:
            prepared = (
                prepare_custom(path, name, custom[name], params) if name in custom else prepare_file(path, name, params)
            )
            embed_prepared(ctx.embeddings, model, [prepared])
            assert prepared.vectors is not None
            done.append((prepared, store.add(prepared.texts, prepared.vectors, prepared.metadatas)))
            on_progress(RebuildProgress(len(all_names), index, name, msg=f"({index} / {len(all_names)}): {name}"))
        except ZhikuError as error:
            failed[name] = error.message
            on_progress(RebuildProgress(len(all_names), index, name, error.status_code, error.message))
    return done, failed


def _switch(
    ctx: KbContext,
    kb: KnowledgeBase,
    new: StoreSpec,
    done: list[tuple[PreparedFile, list[str]]],
    keywords: KeywordIndex,
) -> None:
    """Point the registry (and, for FAISS, the folder) at the new vectors, then drop the old ones."""
    old = ctx.store_spec(kb)
    final = vector_dir(ctx.data_dir, kb.name, new.embed_model)
    retired = final.with_name(f".retired-{uuid.uuid4().hex[:8]}")
    if new.vs_type == "faiss":
        if final.exists():
            final.rename(retired)
        new.directory.rename(final)
    with session_scope(ctx.sessions) as session:
        session.execute(delete(KnowledgeFile).where(KnowledgeFile.kb_id == kb.id))
        for prepared, ids in done:
            repo.save_file(session, kb_id=kb.id, record=prepared.record, vs_ids=ids, metas=prepared.metadatas)
        row = repo.require_kb(session, kb.name)
        row.vs_type, row.embed_model, row.vs_collection = new.vs_type, new.embed_model, new.collection
    # The keyword index follows the registry: a keyword search sees the new chunk ids from here on.
    swap_keyword_index(ctx.data_dir, kb.name, keywords)
    # Only now, with the registry pointing at the new store, drop the cached old one: a search arriving in
    # between still reads the old (complete) index, and one arriving after opens the new store.
    ctx.stores.evict(kb.name)
    shutil.rmtree(retired, ignore_errors=True)
    replaced_in_place = old.vs_type == new.vs_type == "faiss" and old.directory == final
    if not replaced_in_place:
        create_store(old, ctx.store_options).drop()
    log.info("rebuilt %s: %d files into %s/%s", kb.name, len(done), new.vs_type, new.embed_model)
