"""The registry as the services read it: knowledge-base rows and what is registered of their files.

Each call runs in its own short transaction; rows come back detached (expire_on_commit=False), safe to read
after the session has closed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from server.db import repository as repo
from server.db.engine import session_scope
from server.db.models import KnowledgeBase
from server.db.schema import clear_tables


class KbCatalog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory, for other stores in the same database (conversations)."""
        return self._sessions

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        with session_scope(self._sessions) as session:
            yield session

    def require(self, name: str) -> KnowledgeBase:
        """The KB's row; raises KnowledgeBaseNotFound."""
        with self.session() as session:
            return repo.require_kb(session, name)

    def find(self, name: str) -> KnowledgeBase | None:
        with self.session() as session:
            return repo.get_kb(session, name)

    def names(self) -> list[str]:
        with self.session() as session:
            return [kb.name for kb in repo.list_kbs(session)]

    def recent_names(self, limit: int) -> list[str]:
        """Up to `limit` KB names, the one whose files were registered last first."""
        with self.session() as session:
            return repo.recent_kb_names(session, limit)

    def file_names(self, kb: KnowledgeBase) -> list[str]:
        with self.session() as session:
            return [row.file_name for row in repo.list_files(session, kb_id=kb.id)]

    def enabled_file_names(self, kb: KnowledgeBase) -> list[str]:
        """The files searches may retrieve (a disabled file is kept but never answers)."""
        with self.session() as session:
            return [row.file_name for row in repo.list_files(session, kb_id=kb.id) if row.enabled]

    def registered(self, kb: KnowledgeBase) -> dict[str, tuple[str, bool]]:
        """{file_name: (sha256, custom_docs)} for the KB's registered files."""
        with self.session() as session:
            return {row.file_name: (row.sha256, row.custom_docs) for row in repo.list_files(session, kb_id=kb.id)}

    def same_content(self, kb: KnowledgeBase, digests: list[str]) -> dict[str, str]:
        """{sha256: a registered file of the KB with that content} among `digests`."""
        with self.session() as session:
            return repo.files_by_sha256(session, kb_id=kb.id, digests=digests)

    def is_registered(self, kb: KnowledgeBase, file_name: str) -> bool:
        with self.session() as session:
            return repo.get_file(session, kb_id=kb.id, file_name=file_name) is not None

    def has_custom_docs(self, kb: KnowledgeBase, file_name: str) -> bool:
        with self.session() as session:
            row = repo.get_file(session, kb_id=kb.id, file_name=file_name)
            return bool(row and row.custom_docs)

    def chunk_ids(self, kb: KnowledgeBase) -> list[str]:
        with self.session() as session:
            return repo.kb_vs_ids(session, kb_id=kb.id)

    def chunk_count(self, kb: KnowledgeBase) -> int:
        with self.session() as session:
            return repo.count_chunks(session, kb_id=kb.id)

    def custom_file_chunk_ids(self, kb: KnowledgeBase) -> dict[str, list[str]]:
        """{file_name: chunk ids} of the files whose chunks were written by hand (custom docs, the chunk editor)."""
        with self.session() as session:
            rows = [row for row in repo.list_files(session, kb_id=kb.id) if row.custom_docs]
            return {row.file_name: repo.file_vs_ids(session, file_id=row.id) for row in rows}

    def set_file_settings(
        self, session: Session, kb: KnowledgeBase, file_name: str, tags: list[str], enabled: bool
    ) -> None:
        """In the caller's transaction (the one registering the file)."""
        row = repo.get_file(session, kb_id=kb.id, file_name=file_name)
        if row is not None:
            row.tags, row.enabled = list(tags), enabled

    def set_file_tags(self, session: Session, kb: KnowledgeBase, file_name: str, tags: list[str]) -> None:
        """In the caller's transaction (the one registering the file)."""
        row = repo.get_file(session, kb_id=kb.id, file_name=file_name)
        if row is not None:
            row.tags = list(tags)

    def clear(self) -> None:
        """Empty every registry table (files and vectors stay where they are)."""
        clear_tables(self.engine)

    @property
    def engine(self) -> Engine:
        engine = self._sessions.kw.get("bind")
        if not isinstance(engine, Engine):
            raise TypeError("the session factory is not bound to an engine")
        return engine
