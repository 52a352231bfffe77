"""The audit log: every write request (who, what, which KB and files, when, with what result), for the admin."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from server.db.engine import session_scope
from server.db.models import AuditEntry, iso_utc

MAX_DETAIL = 2000
MAX_FILES = 100  # a 1,000-file upload is recorded with its first names and a count


@dataclass(frozen=True)
class AuditRecord:
    actor: str
    action: str
    kb_name: str
    files: list[str]
    status: int
    detail: str = ""


@dataclass(frozen=True)
class AuditView:
    id: int
    at: str
    actor: str
    action: str
    kb_name: str
    files: list[str]
    status: int
    detail: str


@dataclass(frozen=True)
class AuditQuery:
    kb_name: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    offset: int = 0
    newest_first: bool = field(default=True)


CSV_COLUMNS = ("id", "at", "actor", "action", "kb_name", "files", "status", "detail")


class AuditLog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(self, entry: AuditRecord) -> None:
        files = list(entry.files[:MAX_FILES])
        if len(entry.files) > MAX_FILES:
            files.append(f"... and {len(entry.files) - MAX_FILES} more")
        row = AuditEntry(
            actor=entry.actor, action=entry.action, kb_name=entry.kb_name[:64], files=files, status=entry.status,
            detail=entry.detail[:MAX_DETAIL],
        )  # fmt: skip
        with session_scope(self._sessions) as session:
            session.add(row)

    def entries(self, query: AuditQuery) -> list[AuditView]:
        with session_scope(self._sessions) as session:
            rows = session.scalars(_select(query).offset(query.offset).limit(query.limit))
            return [_view(row) for row in rows]

    def csv_lines(self, query: AuditQuery, batch: int = 1000) -> Iterator[str]:
        """The matching entries as CSV, header first, read from the registry `batch` rows at a time."""
        yield _csv_row(CSV_COLUMNS)
        offset = query.offset
        while True:
            with session_scope(self._sessions) as session:
                rows = [_view(row) for row in session.scalars(_select(query).offset(offset).limit(batch))]
            for view in rows:
                values = asdict(view)
                values["files"] = "; ".join(view.files)
                yield _csv_row([values[column] for column in CSV_COLUMNS])
            if len(rows) < batch:
                return
            offset += batch


def _select(query: AuditQuery) -> Select[AuditEntry]:
    statement = select(AuditEntry)
    if query.kb_name is not None:
        statement = statement.where(AuditEntry.kb_name == query.kb_name)
    if query.actor is not None:
        statement = statement.where(AuditEntry.actor == query.actor)
    if query.since is not None:
        statement = statement.where(AuditEntry.at >= query.since)
    if query.until is not None:
        statement = statement.where(AuditEntry.at < query.until)
    order = AuditEntry.id.desc() if query.newest_first else AuditEntry.id
    return statement.order_by(order)


def _csv_row(values: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([_inert(value) for value in values])
    return buffer.getvalue()


def _inert(value: object) -> object:
    """A file name such as `=HYPERLINK(...)` must stay text when the CSV is opened in a spreadsheet."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _view(row: AuditEntry) -> AuditView:
    return AuditView(
        id=row.id, at=iso_utc(row.at), actor=row.actor, action=row.action, kb_name=row.kb_name,
        files=list(row.files), status=row.status, detail=row.detail,
    )  # fmt: skip
