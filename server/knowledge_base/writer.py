"""The one write path of a knowledge base's content: vector store, keyword index, registry and content folder.

Every change to what a KB holds goes through `KbWriter` (files committed or removed, chunks edited by id) or
`KbLifecycle` (KBs created, dropped, switched to a rebuilt store), under the KB's lock, recorded in the write journal
first. The registry is the source of truth: new chunks reach the stores (flushed) before the registry transaction
that shows them, and chunks leave the stores only after the transaction that stops showing them. docs/write-path.md
has the order of every step and what recovery does after a crash at each.
"""

from __future__ import annotations

import base64
import logging
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from server.db import repository as repo
from server.db.models import KnowledgeBase, KnowledgeFile
from server.embeddings.base import Vectors
from server.errors import DuplicateFile, FileNotInKnowledgeBase, InvalidInput, StorageError, ZhikuError
from server.knowledge_base.ingest import Failures, PreparedFile
from server.knowledge_base.journal import COMMITTED, JournaledWrites, JournalEntry
from server.knowledge_base.paths import prepare_target
from server.vectorstores.base import VectorStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkEdit:
    """One entry of update_docs_by_id: new text (with its vector) and metadata, or a deletion (text None)."""

    chunk_id: str
    text: str | None = None
    metadata: dict[str, Any] | None = None
    vector: Vectors | None = None


CommitHook = Callable[[Session, Sequence[PreparedFile]], None]
"""Runs inside the transaction that registers files, with those files: what it writes commits with them."""


@dataclass(frozen=True)
class _Planned:
    prepared: PreparedFile
    ids: list[str]


class KbWriter(JournaledWrites):
    # -- files ----------------------------------------------------------------------------------------------

    def commit(
        self,
        kb_name: str,
        files: Sequence[PreparedFile],
        *,
        move: bool,
        replace: bool = True,
        on_commit: CommitHook | None = None,
    ) -> Failures:
        """Write embedded files; returns {file_name: reason} for those that failed (the others are all in).

        Without `replace`, a file already registered fails as a duplicate. With `move`, each file's `source_path`
        (a staged upload) is moved into the content folder once the registry shows it. `on_commit` records more in
        the registering transaction (a job marks its files done).
        """
        failed: Failures = {}
        with self._writing(kb_name) as (kb, store):
            planned = self._plan(kb, files, move, replace, failed)
            if not planned:
                return failed
            payload = self._files_payload(kb, planned, move)
            entry = self._journal.begin(kb.name, "files", payload)
            self._probes.reached("files:journaled")
            stored = self._store(kb, store, planned, failed)
            self._probes.reached("files:stored")
            try:
                payload = self._register(kb, stored, entry, payload, on_commit)
            except (SQLAlchemyError, OSError) as error:
                log.error("could not register %d files in %s: %s", len(stored), kb.name, error)
                self._undo_files(store, payload)
                self._journal.finish(entry)
                failed.update(
                    {p.prepared.record.file_name: StorageError("the registry refused the write") for p in stored}
                )
                return failed
            self._probes.reached("files:committed")
            self._finish_files(store, payload)
            self._journal.finish(entry)
        return failed

    def _plan(
        self, kb: KnowledgeBase, files: Sequence[PreparedFile], move: bool, replace: bool, failed: Failures
    ) -> list[_Planned]:
        planned = []
        for prepared in files:
            assert prepared.vectors is not None, "FilePreparer.embed() must run before commit()"
            name = prepared.record.file_name
            try:
                if not replace and self._catalog.is_registered(kb, name):
                    raise DuplicateFile.name_taken(name, kb.name)
                if move and prepared.source_path is not None:
                    prepare_target(self._storage.content_path(kb.name, name), name)
            except ZhikuError as error:
                failed[name] = error
                continue
            planned.append(_Planned(prepared, [uuid.uuid4().hex for _ in prepared.chunks]))
        return planned

    def _files_payload(self, kb: KnowledgeBase, planned: Sequence[_Planned], move: bool) -> dict[str, Any]:
        data_dir = self._storage.data_dir
        entries = []
        for item in planned:
            source = item.prepared.source_path
            staged = _journal_path(source, data_dir) if move and source is not None else None
            entries.append(
                {"name": item.prepared.record.file_name, "new_ids": item.ids, "old_ids": [], "staged": staged}
            )
        return {"store": self._storage.ref(self._storage.spec(kb)), "files": entries}

    def _store(
        self, kb: KnowledgeBase, store: VectorStore, planned: list[_Planned], failed: Failures
    ) -> list[_Planned]:
        """Add each file's chunks to the store and the keyword index; a file the store refuses is left out."""
        stored = []
        for item in planned:
            prepared = item.prepared
            assert prepared.vectors is not None
            try:
                store.add(prepared.texts, prepared.vectors, prepared.metadatas, ids=item.ids)
            except ZhikuError as error:
                failed[prepared.record.file_name] = error
                continue
            stored.append(item)
        store.flush()
        for item in stored:
            self._keywords.added(kb.name, kb.vs_collection, item.ids, item.prepared.texts)
        return stored

    def _register(
        self,
        kb: KnowledgeBase,
        stored: list[_Planned],
        entry: int,
        payload: dict[str, Any],
        on_commit: CommitHook | None,
    ) -> dict[str, Any]:
        """One transaction: each stored file's rows replace its old ones, and the journal entry is committed."""
        kept = {item.prepared.record.file_name for item in stored}
        entries = [dict(one) for one in payload["files"] if one["name"] in kept]
        with self._catalog.session() as session:
            for item, one in zip(stored, entries, strict=True):
                prepared = item.prepared
                existing = repo.get_file(session, kb_id=kb.id, file_name=one["name"])
                one["old_ids"] = repo.file_vs_ids(session, file_id=existing.id) if existing else []
                repo.save_file(session, kb_id=kb.id, record=prepared.record, vs_ids=item.ids, metas=prepared.metadatas)
            if on_commit is not None:
                on_commit(session, [item.prepared for item in stored])
            committed = {**payload, "files": entries, "dropped": _dropped_ids(payload, kept)}
            self._journal.commit(session, entry, committed)
        return committed

    def _finish_files(self, store: VectorStore, payload: dict[str, Any]) -> None:
        """After the commit: drop replaced chunks, then move the staged uploads into the content folder."""
        collection, kb_name = payload["store"]["collection"], payload["store"]["kb_name"]
        old = [chunk_id for one in payload["files"] for chunk_id in one["old_ids"]] + payload.get("dropped", [])
        if old:
            store.delete(old)
            store.flush()
            self._keywords.removed(kb_name, collection, old)
        self._probes.reached("files:old-removed")
        for one in payload["files"]:
            if one["staged"]:
                staged = self._storage.data_dir / one["staged"]  # an absolute path stays as it is
                if staged.exists():
                    target = self._storage.content_path(kb_name, one["name"])
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(staged, target)
        self._probes.reached("files:moved")

    def _undo_files(self, store: VectorStore, payload: dict[str, Any]) -> None:
        """Before the commit: take the new chunks out again; the registry never showed them."""
        new = [chunk_id for one in payload["files"] for chunk_id in one["new_ids"]]
        store.delete(new)
        store.flush()
        self._keywords.removed(payload["store"]["kb_name"], payload["store"]["collection"], new)

    # -- removal ----------------------------------------------------------------------------------------------

    def remove(self, kb_name: str, file_names: Sequence[str], *, delete_content: bool = False) -> Failures:
        """Delete files' chunks and registry rows (and with `delete_content` their content files)."""
        failed: Failures = {}
        with self._writing(kb_name) as (kb, store):
            with self._catalog.session() as session:
                ids: list[str] = []
                for name in file_names:
                    row = repo.get_file(session, kb_id=kb.id, file_name=name)
                    if row is None:
                        failed[name] = FileNotInKnowledgeBase(f"{name} is not in knowledge base {kb.name!r}")
                        continue
                    ids += repo.file_vs_ids(session, file_id=row.id)
                    repo.delete_file(session, row)
                unlink = [name for name in file_names if delete_content]
                payload = {"store": self._storage.ref(self._storage.spec(kb)), "ids": ids, "unlink": unlink}
                entry = self._journal.add(session, kb.name, "remove", payload, COMMITTED)
            self._probes.reached("remove:committed")
            gone = self._finish_remove(store, payload)
            self._journal.finish(entry)
        return {name: error for name, error in failed.items() if name not in gone}

    def _finish_remove(self, store: VectorStore, payload: dict[str, Any]) -> set[str]:
        """Purge the removed chunks from the store and the keyword index, then unlink the files; returns those."""
        kb_name = payload["store"]["kb_name"]
        if payload["ids"]:
            store.delete(payload["ids"])
            store.flush()
            self._keywords.removed(kb_name, payload["store"]["collection"], payload["ids"])
        self._probes.reached("remove:purged")
        unlinked = set()
        for name in payload["unlink"]:
            path = self._storage.content_path(kb_name, name)
            if path.is_file() or path.is_symlink():  # a link goes (its target stays)
                path.unlink()
                unlinked.add(name)
        return unlinked

    # -- chunk edits ------------------------------------------------------------------------------------------

    def edit_chunks(self, kb_name: str, edits: Sequence[ChunkEdit]) -> Failures:
        """Apply chunk edits by id; chunks not named are left exactly as they were. Failures by chunk id."""
        failed: Failures = {}
        with self._writing(kb_name) as (kb, store):
            with self._catalog.session() as session:
                applied = []
                for edit in edits:
                    try:
                        applied.append(self._edit_registry(session, kb, edit))
                    except ZhikuError as error:
                        failed[edit.chunk_id] = error
                payload = {"store": self._storage.ref(self._storage.spec(kb)), "edits": applied}
                entry = self._journal.add(session, kb.name, "edit", payload, COMMITTED)
            self._probes.reached("edit:committed")
            self._finish_edits(store, payload)
            self._journal.finish(entry)
        return failed

    def _edit_registry(self, session: Session, kb: KnowledgeBase, edit: ChunkEdit) -> dict[str, Any]:
        """Check one edit and apply it to the registry; returns what the store needs. Raises before any change."""
        existing = repo.chunks_by_vs_id(session, kb_id=kb.id, vs_ids=[edit.chunk_id]).get(edit.chunk_id)
        if edit.text is None:
            if existing is None:
                raise InvalidInput(f"chunk {edit.chunk_id} is not in knowledge base {kb.name!r}")
            owner = existing.file
            session.delete(existing)
            session.flush()
            _touch(session, owner)
            return {"id": edit.chunk_id, "text": None}
        metadata = edit.metadata or {}
        file = existing.file if existing else repo.get_file(session, kb_id=kb.id, file_name=str(metadata.get("source")))
        if file is None:
            raise FileNotInKnowledgeBase(
                f"chunk {edit.chunk_id} is unknown; to add a chunk, give metadata.source naming a file of the KB"
            )
        metadata = {**(existing.meta if existing else {}), **metadata, "source": file.file_name}
        if existing is not None:
            existing.meta = metadata
        else:
            repo.add_chunks(session, kb_id=kb.id, file_id=file.id, vs_ids=[edit.chunk_id], metas=[metadata])
            session.flush()
        _touch(session, file)
        assert edit.vector is not None
        vector = base64.b64encode(np.asarray(edit.vector, dtype="<f4").tobytes()).decode("ascii")
        return {"id": edit.chunk_id, "text": edit.text, "metadata": metadata, "vector": vector}

    def _finish_edits(self, store: VectorStore, payload: dict[str, Any]) -> None:
        kb_name, collection = payload["store"]["kb_name"], payload["store"]["collection"]
        for edit in payload["edits"]:
            store.delete([edit["id"]])
            self._keywords.removed(kb_name, collection, [edit["id"]])
            if edit["text"] is not None:
                vector = np.frombuffer(base64.b64decode(edit["vector"]), dtype="<f4").reshape(1, -1)
                store.add([edit["text"]], vector, [edit["metadata"]], ids=[edit["id"]])
                self._keywords.added(kb_name, collection, [edit["id"]], [edit["text"]])
        store.flush()

    # -- recovery ---------------------------------------------------------------------------------------------

    def recover(self, entry: JournalEntry) -> None:
        """Finish (committed) or undo (pending) a files, remove or edit entry a crashed process left."""
        store = self._storage.open(self._storage.spec_of(entry.payload["store"], self._storage.data_dir))
        try:
            if entry.kind == "files":
                committed = entry.state == COMMITTED
                (self._finish_files if committed else self._undo_files)(store, entry.payload)
            elif entry.kind == "remove":
                self._finish_remove(store, entry.payload)
            elif entry.kind == "edit":
                self._finish_edits(store, entry.payload)
            else:
                raise ValueError(f"KbWriter cannot recover a {entry.kind!r} entry")
        finally:
            store.close()

    @contextmanager
    def _writing(self, kb_name: str) -> Iterator[tuple[KnowledgeBase, VectorStore]]:
        """The KB (read after its lock is taken) and its store."""
        with self._locks(kb_name):
            kb = self._catalog.require(kb_name)
            yield kb, self._storage.store(kb)


def _journal_path(path: Path, data_dir: Path) -> str:
    """A staged file's path for the journal: relative to the data dir when inside it (the data dir may move)."""
    return str(path.relative_to(data_dir)) if path.is_relative_to(data_dir) else str(path)


def _dropped_ids(payload: dict[str, Any], kept: set[str]) -> list[str]:
    """New chunk ids of files that did not make it into the registry: they go with the replaced ones."""
    return [chunk_id for one in payload["files"] if one["name"] not in kept for chunk_id in one["new_ids"]]


def _touch(session: Session, file: KnowledgeFile) -> None:
    repo.refresh_chunk_count(session, file=file)
    file.custom_docs = True
