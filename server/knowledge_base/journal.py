"""The write journal: a registry row for each write to a knowledge base from before it touches a store until it
has finished. docs/write-path.md tells the whole story; in short, a row is

- "pending" while the stores may hold part of the write but the registry does not show it: recovery undoes it;
- "committed" once the registry shows it (set in the same transaction): recovery finishes what was left to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.db.models import PendingWrite
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.keywords import KeywordIndexes
from server.knowledge_base.locks import KbLocks
from server.knowledge_base.probes import CrashProbes
from server.knowledge_base.storage import KbStorage

Kind = Literal["files", "remove", "edit", "rebuild", "create", "drop", "import"]
PENDING, COMMITTED = "pending", "committed"


@dataclass(frozen=True)
class JournalEntry:
    id: int
    kb_name: str
    kind: str
    state: str
    owner: str
    payload: dict[str, Any]


class WriteJournal:
    def __init__(self, catalog: KbCatalog, owner: str) -> None:
        self._catalog = catalog
        self._owner = owner

    def begin(self, kb_name: str, kind: Kind, payload: dict[str, Any]) -> int:
        """Record a write that is about to touch the stores (its own transaction, committed at once)."""
        with self._catalog.session() as session:
            return self.add(session, kb_name, kind, payload, PENDING)

    def add(self, session: Session, kb_name: str, kind: Kind, payload: dict[str, Any], state: str) -> int:
        """Record a write inside the caller's transaction (a write whose registry change is its commit point)."""
        row = PendingWrite(kb_name=kb_name, kind=kind, state=state, owner=self._owner, payload=payload)
        session.add(row)
        session.flush()
        return row.id

    def commit(self, session: Session, entry_id: int, payload: dict[str, Any] | None = None) -> None:
        """Mark the write committed, inside the caller's transaction that makes it visible in the registry; a new
        `payload` replaces the recorded one (None keeps it)."""
        row = session.get(PendingWrite, entry_id)
        if row is None:
            raise LookupError(f"journal entry {entry_id} is gone")
        row.state = COMMITTED
        if payload is not None:
            row.payload = payload

    def finish(self, entry_id: int, session: Session | None = None) -> None:
        """The write is done: forget it (in the caller's transaction when one is given)."""
        if session is not None:
            session.execute(delete(PendingWrite).where(PendingWrite.id == entry_id))
            return
        with self._catalog.session() as own:
            own.execute(delete(PendingWrite).where(PendingWrite.id == entry_id))

    def unfinished(self) -> list[JournalEntry]:
        """Entries of other processes, oldest first (recovery asks once no other process is alive)."""
        with self._catalog.session() as session:
            rows = session.scalars(select(PendingWrite).order_by(PendingWrite.id))
            return [
                JournalEntry(row.id, row.kb_name, row.kind, row.state, row.owner, dict(row.payload))
                for row in rows
                if row.owner != self._owner
            ]


class JournaledWrites:
    """The base of the two classes that write to knowledge bases (KbWriter, KbLifecycle): what every journaled
    write needs."""

    def __init__(
        self,
        catalog: KbCatalog,
        storage: KbStorage,
        keywords: KeywordIndexes,
        locks: KbLocks,
        journal: WriteJournal,
        probes: CrashProbes,
    ) -> None:
        self._catalog = catalog
        self._storage = storage
        self._keywords = keywords
        self._locks = locks
        self._journal = journal
        self._probes = probes
