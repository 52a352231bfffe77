"""The one write path of a knowledge base's content: vector store, keyword index, registry and content folder.

Every change to what a KB holds goes through `KbWriter`, under the KB's lock: files committed or removed, chunks
edited by id, and the switch of a rebuilt store. Each file is written as a unit: its new chunks are added to the
store first, the registry rows replaced in one transaction, then the old chunks removed; a file that fails leaves
the old version of everything untouched.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from server.db import repository as repo
from server.db.models import KnowledgeBase, KnowledgeFile
from server.embeddings.base import Vectors
from server.errors import DuplicateFile, FileNotInKnowledgeBase, InvalidInput, StorageError, ZhikuError
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.ingest import Failures, PreparedFile
from server.knowledge_base.keywords import KeywordIndexes
from server.knowledge_base.locks import KbLocks
from server.knowledge_base.storage import KbStorage
from server.retrieval.keyword_index import KeywordIndex
from server.vectorstores.base import VectorStore
from server.vectorstores.registry import STORES, StoreSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkEdit:
    """One entry of update_docs_by_id: new text (with its vector) and metadata, or a deletion (text None)."""

    chunk_id: str
    text: str | None = None
    metadata: dict[str, Any] | None = None
    vector: Vectors | None = None


class KbWriter:
    def __init__(self, catalog: KbCatalog, storage: KbStorage, keywords: KeywordIndexes, locks: KbLocks) -> None:
        self._catalog = catalog
        self._storage = storage
        self._keywords = keywords
        self._locks = locks

    def commit(self, kb_name: str, files: Sequence[PreparedFile], *, move: bool, replace: bool = True) -> Failures:
        """Write each embedded file; returns {file_name: reason} for the files that failed.

        Without `replace`, a file that another request registered meanwhile fails as a duplicate. With `move`,
        each file's `source_path` (a staged upload) is renamed into the content folder once its chunks and
        registry rows are in place.
        """
        failed: Failures = {}
        if not files:
            return failed
        with self._writing(kb_name) as (kb, store):
            for prepared in files:
                name = prepared.record.file_name
                try:
                    self._commit_one(kb, store, prepared, move, replace)
                except ZhikuError as error:
                    failed[name] = error
                except OSError as error:
                    log.warning("could not write %s into %s: %s", name, kb_name, error)
                    failed[name] = StorageError(f"{name}: {error}")
        return failed

    def remove(self, kb_name: str, file_names: Sequence[str], *, delete_content: bool = False) -> Failures:
        """Delete files' chunks and registry rows (and with `delete_content` their content files)."""
        failed: Failures = {}
        with self._writing(kb_name) as (kb, store):
            for name in file_names:
                if not self._remove_one(kb, store, name):
                    failed[name] = FileNotInKnowledgeBase(f"{name} is not in knowledge base {kb.name!r}")
                path = self._storage.content_file(kb_name, name)
                if delete_content and path.is_file():
                    path.unlink()
                    failed.pop(name, None)
        return failed

    def edit_chunks(self, kb_name: str, edits: Sequence[ChunkEdit]) -> Failures:
        """Apply chunk edits by id; chunks not named are left exactly as they were. Failures by chunk id."""
        failed: Failures = {}
        with self._writing(kb_name) as (kb, store):
            for edit in edits:
                try:
                    self._edit_one(kb, store, edit)
                except ZhikuError as error:
                    failed[edit.chunk_id] = error
        return failed

    def switch(
        self, kb: KnowledgeBase, new: StoreSpec, done: Sequence[tuple[PreparedFile, list[str]]], keywords: KeywordIndex
    ) -> None:
        """Point the registry at a rebuilt store and keyword index, then drop the old ones.

        The caller holds the KB's lock and has filled `new` (closed) and `keywords`. A store whose data lives in
        its folder was built in a side folder and is renamed into place first."""
        old = self._storage.spec(kb)
        final = self._storage.vector_dir(kb.name, new.embed_model)
        retired = final.with_name(f".retired-{uuid.uuid4().hex[:8]}")
        in_folder = STORES.get(new.vs_type).in_directory
        if in_folder:
            if final.exists():
                final.rename(retired)
            new.directory.rename(final)
        with self._catalog.session() as session:
            session.execute(delete(KnowledgeFile).where(KnowledgeFile.kb_id == kb.id))
            for prepared, ids in done:
                repo.save_file(session, kb_id=kb.id, record=prepared.record, vs_ids=ids, metas=prepared.metadatas)
            row = repo.require_kb(session, kb.name)
            row.vs_type, row.embed_model, row.vs_collection = new.vs_type, new.embed_model, new.collection
        self._keywords.swap(kb.name, keywords)  # keyword searches see the new chunk ids from here on
        # Only now, with the registry pointing at the new store, drop the cached old one: a search arriving in
        # between still reads the old (complete) index, and one arriving after opens the new store.
        self._storage.evict(kb.name)
        shutil.rmtree(retired, ignore_errors=True)
        replaced_in_place = in_folder and STORES.get(old.vs_type).in_directory and old.directory == final
        if not replaced_in_place:
            self._storage.open(old).drop()

    # -- one unit each -----------------------------------------------------------------------------------------

    @contextmanager
    def _writing(self, kb_name: str) -> Iterator[tuple[KnowledgeBase, VectorStore]]:
        """The KB (read after its lock is taken) and its store; the store's writes are flushed at the end."""
        with self._locks(kb_name):
            kb = self._catalog.require(kb_name)
            store = self._storage.store(kb)
            try:
                yield kb, store
            finally:
                store.flush()

    def _commit_one(
        self, kb: KnowledgeBase, store: VectorStore, prepared: PreparedFile, move: bool, replace: bool
    ) -> None:
        assert prepared.vectors is not None, "FilePreparer.embed() must run before commit()"
        name = prepared.record.file_name
        if not replace and self._catalog.is_registered(kb, name):
            raise DuplicateFile(f"{name} was added to {kb.name!r} meanwhile; upload with override=true")
        new_ids = store.add(prepared.texts, prepared.vectors, prepared.metadatas)
        try:
            with self._catalog.session() as session:
                existing = repo.get_file(session, kb_id=kb.id, file_name=name)
                old_ids = repo.file_vs_ids(session, file_id=existing.id) if existing else []
                repo.save_file(session, kb_id=kb.id, record=prepared.record, vs_ids=new_ids, metas=prepared.metadatas)
                if move and prepared.source_path is not None:
                    _move_into(prepared.source_path, self._storage.content_file(kb.name, name))
        except BaseException:
            store.delete(new_ids)
            raise
        self._keywords.added(kb.name, new_ids, prepared.texts)
        if old_ids:
            store.delete(old_ids)
            self._keywords.removed(kb.name, old_ids)

    def _remove_one(self, kb: KnowledgeBase, store: VectorStore, name: str) -> bool:
        with self._catalog.session() as session:
            row = repo.get_file(session, kb_id=kb.id, file_name=name)
            if row is None:
                return False
            ids = repo.file_vs_ids(session, file_id=row.id)
            store.delete(ids)
            self._keywords.removed(kb.name, ids)
            repo.delete_file(session, row)
        return True

    def _edit_one(self, kb: KnowledgeBase, store: VectorStore, edit: ChunkEdit) -> None:
        with self._catalog.session() as session:
            existing = repo.chunks_by_vs_id(session, kb_id=kb.id, vs_ids=[edit.chunk_id]).get(edit.chunk_id)
            if edit.text is None:
                if existing is None:
                    raise InvalidInput(f"chunk {edit.chunk_id} is not in knowledge base {kb.name!r}")
                store.delete([edit.chunk_id])
                self._keywords.removed(kb.name, [edit.chunk_id])
                file = existing.file
                session.delete(existing)
                session.flush()
            else:
                file = self._replace_chunk(session, kb, store, edit, existing)
            repo.refresh_chunk_count(session, file=file)
            file.custom_docs = True

    def _replace_chunk(
        self, session: Session, kb: KnowledgeBase, store: VectorStore, edit: ChunkEdit, existing: Any
    ) -> KnowledgeFile:
        assert edit.text is not None and edit.vector is not None
        metadata = edit.metadata or {}
        file = existing.file if existing else repo.get_file(session, kb_id=kb.id, file_name=str(metadata.get("source")))
        if file is None:
            raise FileNotInKnowledgeBase(
                f"chunk {edit.chunk_id} is unknown; to add a chunk, give metadata.source naming a file of the KB"
            )
        metadata = {**(existing.meta if existing else {}), **metadata, "source": file.file_name}
        store.delete([edit.chunk_id])
        store.add([edit.text], edit.vector, [metadata], ids=[edit.chunk_id])
        self._keywords.added(kb.name, [edit.chunk_id], [edit.text])
        if existing is not None:
            existing.meta = metadata
        else:
            repo.add_chunks(session, kb_id=kb.id, file_id=file.id, vs_ids=[edit.chunk_id], metas=[metadata])
            session.flush()
        return file


def _move_into(staged: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, target)
