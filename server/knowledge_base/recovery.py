"""Start-up repair of what a crash interrupted (docs/write-path.md).

1. Every journal entry a dead process left is finished (committed) or undone (pending).
2. Knowledge bases from before collections were part of the layout get their files moved into place.
3. Leftovers are swept: staged uploads, store folders and keyword files of other collections, temp files.

It runs only when no other process holds a writer lease on the data dir, so it never touches a live write.
While processes run side by side (the API and separate job workers), `recover_dead` repairs, under the KB's lock,
the writes of a process that died; the layout and leftovers wait for the next start-up alone.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from server.db import repository as repo
from server.db.models import KnowledgeBase
from server.errors import ZhikuError
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.journal import JournalEntry, WriteJournal
from server.knowledge_base.lease import WriterLease
from server.knowledge_base.lifecycle import KbLifecycle
from server.knowledge_base.locks import KbLocks
from server.knowledge_base.paths import model_dir, vector_root
from server.knowledge_base.storage import KbStorage
from server.knowledge_base.writer import KbWriter
from server.vectorstores.registry import STORES

log = logging.getLogger(__name__)

_LEGACY_KEYWORD_FILE = "keyword_index.db"


@dataclass
class RecoveryReport:
    finished: list[str] = field(default_factory=list)  # "<kind> <kb>" of each journal entry completed or undone
    failed: list[str] = field(default_factory=list)  # entries that could not be recovered now (kept for next time)
    moved: list[str] = field(default_factory=list)  # KBs moved to the current layout
    swept: list[str] = field(default_factory=list)  # leftovers removed, relative to the data dir
    skipped: str = ""  # why recovery did not run (another live process)


class Recovery:
    def __init__(
        self,
        catalog: KbCatalog,
        storage: KbStorage,
        journal: WriteJournal,
        writer: KbWriter,
        lifecycle: KbLifecycle,
        lease: WriterLease,
        locks: KbLocks,
    ) -> None:
        self._catalog = catalog
        self._storage = storage
        self._journal = journal
        self._writer = writer
        self._lifecycle = lifecycle
        self._lease = lease
        self._locks = locks

    def recover_dead(self) -> RecoveryReport:
        """The unfinished writes of processes that have died, while others live on."""
        report = RecoveryReport()
        alive = set(self._lease.others_alive())
        for entry in _imports_last(self._journal.unfinished()):
            if entry.owner not in alive:
                with self._locks(entry.kb_name):
                    self._recover(entry, report)
        if report.finished:
            log.warning("recovered %d writes of a process that died: %s", len(report.finished), report.finished)
        return report

    def run(self) -> RecoveryReport:
        report = RecoveryReport()
        others = self._lease.others_alive()
        if others:
            report.skipped = f"other processes write to this data dir ({', '.join(others)}); recovery waits for them"
            log.warning("start-up recovery skipped: %s", report.skipped)
            return report
        for entry in _imports_last(self._journal.unfinished()):
            self._recover(entry, report)
        with self._catalog.session() as session:
            kbs = repo.list_kbs(session)
        for kb in kbs:
            self._move_legacy_layout(kb, report)
            self._sweep(kb, report)
        if report.finished or report.swept or report.moved:
            log.warning(
                "start-up recovery: %d interrupted writes completed or undone, %d leftovers removed, %d KBs moved",
                len(report.finished), len(report.swept), len(report.moved),
            )  # fmt: skip
        return report

    def _recover(self, entry: JournalEntry, report: RecoveryReport) -> None:
        label = f"{entry.kind} {entry.kb_name} ({entry.state})"
        try:
            if entry.kind in ("files", "remove", "edit"):
                self._writer.recover(entry)
            else:
                self._lifecycle.recover(entry)
        except (ZhikuError, OSError, KeyError, TypeError, ValueError) as error:  # a store down, a damaged entry
            log.error("could not recover the interrupted %s: %s", label, getattr(error, "message", error))
            report.failed.append(label)
            return
        self._journal.finish(entry.id)
        report.finished.append(label)

    # -- layout -------------------------------------------------------------------------------------------------

    def _move_legacy_layout(self, kb: KnowledgeBase, report: RecoveryReport) -> None:
        """Files that sat directly in the model folder, and the keyword index without a collection in its name,
        move to where the current layout keeps them (renames only, so a crash in between leaves no half)."""
        data_dir = self._storage.data_dir
        legacy = model_dir(data_dir, kb.name, kb.embed_model)
        target = self._storage.vector_dir(kb.name, kb.embed_model, kb.vs_collection)
        loose = [p for p in legacy.iterdir() if p.is_file()] if legacy.is_dir() else []
        if loose and STORES.get(kb.vs_type).in_directory and not target.exists():
            target.mkdir(parents=True)
            for path in loose:
                os.replace(path, target / path.name)
            report.moved.append(kb.name)
        old_index = self._storage.kb_dir(kb.name) / _LEGACY_KEYWORD_FILE
        new_index = self._storage.keyword_file(kb.name, kb.vs_collection)
        if old_index.is_file() and not new_index.exists():
            for suffix in ("-journal", ""):  # a hot journal goes with its file, first
                if old_index.with_name(old_index.name + suffix).exists():
                    os.replace(
                        old_index.with_name(old_index.name + suffix), new_index.with_name(new_index.name + suffix)
                    )

    # -- leftovers ----------------------------------------------------------------------------------------------

    def _sweep(self, kb: KnowledgeBase, report: RecoveryReport) -> None:
        kb_dir = self._storage.kb_dir(kb.name)
        if not kb_dir.is_dir():
            return
        leftovers = [kb_dir / ".staging"] if (kb_dir / ".staging").exists() else []
        leftovers += self._vector_leftovers(kb)
        keep = self._storage.keyword_file(kb.name, kb.vs_collection)
        keywords = [*kb_dir.glob("keyword_index*"), *kb_dir.glob(".keyword_index*")]
        leftovers += [p for p in keywords if p not in (keep, keep.with_name(keep.name + "-journal"))]
        for path in leftovers:
            _remove(path)
            report.swept.append(str(path.relative_to(self._storage.data_dir)))

    def _vector_leftovers(self, kb: KnowledgeBase) -> list[Path]:
        """Everything under vector_store/ but the folder of the KB's current collection (when its store keeps files
        there), and temp files inside that folder."""
        root = vector_root(self._storage.data_dir, kb.name)
        current = self._storage.vector_dir(kb.name, kb.embed_model, kb.vs_collection)
        keep = current if STORES.get(kb.vs_type).in_directory else None
        found: list[Path] = []
        for model in sorted(root.iterdir()) if root.is_dir() else []:
            if keep is not None and model == keep.parent:
                found += [child for child in sorted(model.iterdir()) if child != keep]
            else:
                found.append(model)
        if keep is not None and keep.is_dir():
            found += sorted(keep.glob("*.tmp"))
        return found


def _imports_last(entries: list[JournalEntry]) -> list[JournalEntry]:
    """An unfinished import drops its KB: the writes it made into that KB are finished or undone before."""
    return sorted(entries, key=lambda entry: entry.kind == "import")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
