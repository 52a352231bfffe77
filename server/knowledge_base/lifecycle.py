"""Knowledge bases coming and going, and the switch to a rebuilt store: each journaled like the file writes.

- create: the store, keyword index and folders are made first; the registry row appears last, in the transaction
  that finishes the journal entry. A crash before it leaves nothing the registry shows; recovery drops the store.
- drop: the registry row goes first, with the journal entry in the same transaction; the store and the folder are
  removed after. Recovery finishes the removal.
- rebuild: the new store and keyword index are filled beside the live ones (their collection name is new); the
  registry switches to them in one transaction; the old ones are dropped after. Recovery drops the new ones of a
  rebuild that had not switched, the old ones of one that had.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete

from server.db import repository as repo
from server.db.models import KnowledgeBase, KnowledgeFile, new_collection_name
from server.errors import ZhikuError
from server.knowledge_base.ingest import PreparedFile
from server.knowledge_base.journal import COMMITTED, JournaledWrites, JournalEntry
from server.vectorstores.registry import StoreSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewKb:
    name: str
    info: str
    vs_type: str
    embed_model: str
    search_mode: str
    ocr_mode: str = ""  # "" = the global ocr.mode


class KbLifecycle(JournaledWrites):
    # -- create and drop ----------------------------------------------------------------------------------------

    def create(self, new: NewKb) -> KnowledgeBase:
        """Make the KB's store, keyword index and content folder, then register it; raises KnowledgeBaseExists."""
        with self._locks(new.name):
            self._storage.check_new_kb_folder(new.name)
            with self._catalog.session() as session:
                repo.require_no_kb(session, new.name)
            kb = KnowledgeBase(
                id=0, name=new.name, info=new.info, vs_type=new.vs_type, embed_model=new.embed_model,
                vs_collection=new_collection_name(), search_mode=new.search_mode, ocr_mode=new.ocr_mode,
            )  # fmt: skip
            spec = self._storage.spec(kb)
            entry = self._journal.begin(new.name, "create", {"store": self._storage.ref(spec)})
            try:
                self._make(spec)
                self._probes.reached("create:made")
                return self._register(kb, entry)
            except BaseException:
                self._unmake(spec)
                self._journal.finish(entry)
                raise

    def _make(self, spec: StoreSpec) -> None:
        store = self._storage.open(spec)
        try:
            store.create()
        finally:
            store.close()
        (self._storage.kb_dir(spec.kb_name) / "content").mkdir(parents=True, exist_ok=True)
        self._keywords.index(spec.kb_name, spec.collection).create()

    def _register(self, kb: KnowledgeBase, entry: int) -> KnowledgeBase:
        with self._catalog.session() as session:
            row = repo.add_kb(session, name=kb.name, info=kb.info, vs_type=kb.vs_type, embed_model=kb.embed_model)
            row.vs_collection, row.search_mode, row.ocr_mode = kb.vs_collection, kb.search_mode, kb.ocr_mode
            session.flush()
            self._journal.finish(entry, session)  # the registry row and the end of the entry: one transaction
            return row

    def _unmake(self, spec: StoreSpec) -> None:
        """Drop what `_make` made for a KB the registry never showed (its content folder stays)."""
        self._storage.drop(spec)
        self._keywords.index(spec.kb_name, spec.collection).drop()

    def drop(self, kb_name: str) -> None:
        """Unregister the KB, then remove its store, keyword index and folder."""
        with self._locks(kb_name):
            self._drop(self._catalog.require(kb_name))
        log.info("deleted knowledge base %s", kb_name)

    def _drop(self, kb: KnowledgeBase) -> None:
        """Caller holds the KB's lock."""
        payload = {"store": self._storage.ref(self._storage.spec(kb))}
        with self._catalog.session() as session:
            repo.delete_kb(session, repo.require_kb(session, kb.name))
            entry = self._journal.add(session, kb.name, "drop", payload, COMMITTED)
        self._probes.reached("drop:committed")
        self._finish_drop(payload)
        self._journal.finish(entry)

    def _finish_drop(self, payload: dict[str, Any]) -> None:
        spec = self._storage.spec_of(payload["store"], self._storage.data_dir)
        self._storage.evict(spec.kb_name)
        self._unmake(spec)
        if self._catalog.find(spec.kb_name) is None:  # a KB made again under the name keeps its folder
            shutil.rmtree(self._storage.kb_dir(spec.kb_name), ignore_errors=True)

    # -- rebuild --------------------------------------------------------------------------------------------------

    def rebuild_target(self, kb: KnowledgeBase, vs_type: str, embed_model: str) -> tuple[StoreSpec, int]:
        """A new location for the KB's vectors, recorded in the journal before anything is written there."""
        new = self._storage.spec(kb, vs_type=vs_type, embed_model=embed_model, collection=new_collection_name())
        old = self._storage.spec(kb)
        payload = {"new": self._storage.ref(new), "old": self._storage.ref(old)}
        return new, self._journal.begin(kb.name, "rebuild", payload)

    def abandon_rebuild(self, entry: int, new: StoreSpec) -> None:
        """A rebuild that failed before its switch: drop what it wrote."""
        self._unmake(new)
        self._journal.finish(entry)

    def switch(
        self, kb: KnowledgeBase, new: StoreSpec, done: Sequence[tuple[PreparedFile, list[str]]], entry: int
    ) -> None:
        """Point the registry at the rebuilt store and keyword index (one transaction), then drop the old ones.

        The caller holds the KB's lock and has filled and closed the new store and keyword index; `entry` (from
        `rebuild_target`) already names both."""
        old = self._storage.spec(kb)
        with self._catalog.session() as session:
            labels = repo.file_labels(session, kb_id=kb.id)  # the user's tags and enabled flags outlive a rebuild
            session.execute(delete(KnowledgeFile).where(KnowledgeFile.kb_id == kb.id))
            for prepared, ids in done:
                file = repo.save_file(
                    session, kb_id=kb.id, record=prepared.record, vs_ids=ids, metas=prepared.metadatas
                )
                file.tags, file.enabled = labels.get(file.file_name, ([], True))
            row = repo.require_kb(session, kb.name)
            row.vs_type, row.embed_model, row.vs_collection = new.vs_type, new.embed_model, new.collection
            self._journal.commit(session, entry)
        # From here on searches open the new store; the cached old one is closed before it is dropped.
        self._storage.evict(kb.name)
        self._probes.reached("rebuild:switched")
        try:
            self._unmake(old)
        except ZhikuError as error:  # the switch stands; recovery drops the old store at the next start
            log.error("rebuilt %s, but its old store could not be dropped yet: %s", kb.name, error.message)
            return
        self._probes.reached("rebuild:old-dropped")
        self._journal.finish(entry)

    # -- recovery -----------------------------------------------------------------------------------------------

    def recover(self, entry: JournalEntry) -> None:
        data_dir = self._storage.data_dir
        if entry.kind == "create":
            self._unmake(self._storage.spec_of(entry.payload["store"], data_dir))
        elif entry.kind == "drop":
            self._finish_drop(entry.payload)
        elif entry.kind == "import":  # a KB import that did not finish: the part imported goes
            kb = self._catalog.find(entry.kb_name)
            if kb is not None:
                self._drop(kb)
            elif entry.payload.get("fresh_folder"):  # a crash before the KB was registered: only its folder
                shutil.rmtree(self._storage.kb_dir(entry.kb_name), ignore_errors=True)
        elif entry.kind == "rebuild":
            side = "old" if entry.state == COMMITTED else "new"
            self._unmake(self._storage.spec_of(entry.payload[side], data_dir))
        else:
            raise ValueError(f"KbLifecycle cannot recover a {entry.kind!r} entry")
