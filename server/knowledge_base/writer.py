"""Writing prepared files into a KB: vector store, registry and content folder change together or not at all."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from server.db import repository as repo
from server.db.engine import session_scope
from server.db.models import KnowledgeBase
from server.errors import DuplicateFile, FileNotInKnowledgeBase, StorageError, ZhikuError
from server.knowledge_base.context import KbContext
from server.knowledge_base.ingest import PreparedFile
from server.knowledge_base.paths import content_file
from server.retrieval.sync import keyword_added, keyword_removed
from server.vectorstores.base import VectorStore

log = logging.getLogger(__name__)


def load_kb(ctx: KbContext, kb_name: str) -> KnowledgeBase:
    with session_scope(ctx.sessions) as session:
        return repo.require_kb(session, kb_name)


def commit_files(
    ctx: KbContext, kb_name: str, files: Sequence[PreparedFile], *, move: bool, replace: bool = True
) -> dict[str, ZhikuError]:
    """Write each file under the KB's lock; returns {file_name: reason} for the files that failed.

    Without `replace`, a file that another request registered meanwhile fails as a duplicate.
    With `move`, each file's `source_path` (a staged upload) is renamed into the content folder once its chunks
    and registry rows are in place; a file that fails leaves the old version of everything untouched.
    """
    failed: dict[str, ZhikuError] = {}
    if not files:
        return failed
    with ctx.locks(kb_name):
        kb = load_kb(ctx, kb_name)
        store = ctx.store_for(kb)
        try:
            for prepared in files:
                try:
                    _commit_one(ctx, kb, store, prepared, move, replace)
                except ZhikuError as error:
                    failed[prepared.record.file_name] = error
                except OSError as error:
                    log.warning("could not write %s into %s: %s", prepared.record.file_name, kb_name, error)
                    failed[prepared.record.file_name] = StorageError(f"{prepared.record.file_name}: {error}")
        finally:
            store.flush()
    return failed


def _commit_one(
    ctx: KbContext, kb: KnowledgeBase, store: VectorStore, prepared: PreparedFile, move: bool, replace: bool
) -> None:
    assert prepared.vectors is not None, "embed_prepared() must run before commit_files()"
    name = prepared.record.file_name
    if not replace:
        with session_scope(ctx.sessions) as session:
            if repo.get_file(session, kb_id=kb.id, file_name=name) is not None:
                raise DuplicateFile(f"{name} was added to {kb.name!r} meanwhile; upload with override=true")
    new_ids = store.add(prepared.texts, prepared.vectors, prepared.metadatas)
    try:
        with session_scope(ctx.sessions) as session:
            existing = repo.get_file(session, kb_id=kb.id, file_name=prepared.record.file_name)
            old_ids = repo.file_vs_ids(session, file_id=existing.id) if existing else []
            repo.save_file(session, kb_id=kb.id, record=prepared.record, vs_ids=new_ids, metas=prepared.metadatas)
            if move and prepared.source_path is not None:
                _move_into_content(prepared.source_path, content_file(ctx.data_dir, kb.name, prepared.record.file_name))
    except BaseException:
        store.delete(new_ids)
        raise
    keyword_added(ctx.data_dir, kb.name, new_ids, prepared.texts)
    if old_ids:
        store.delete(old_ids)
        keyword_removed(ctx.data_dir, kb.name, old_ids)


def _move_into_content(staged: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, target)


def remove_files(ctx: KbContext, kb: KnowledgeBase, file_names: Sequence[str]) -> dict[str, ZhikuError]:
    """Delete files' chunks from the store and their registry rows; returns failures by name."""
    failed: dict[str, ZhikuError] = {}
    store = ctx.store_for(kb)
    try:
        for name in file_names:
            with session_scope(ctx.sessions) as session:
                row = repo.get_file(session, kb_id=kb.id, file_name=name)
                if row is None:
                    failed[name] = FileNotInKnowledgeBase(f"{name} is not in knowledge base {kb.name!r}")
                    continue
                ids = repo.file_vs_ids(session, file_id=row.id)
                store.delete(ids)
                keyword_removed(ctx.data_dir, kb.name, ids)
                repo.delete_file(session, row)
    finally:
        store.flush()
    return failed
