"""Registry queries. Functions take a session and keyword arguments; callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from server.db.models import Chunk, KnowledgeBase, KnowledgeFile, utcnow
from server.errors import KnowledgeBaseExists, KnowledgeBaseNotFound

FileOrder = Literal["file_name", "ext", "size", "chunk_count", "loader", "updated_at", "created_at"]


@dataclass(frozen=True)
class FileRecord:
    """What the registry knows about one ingested file, minus its chunks."""

    file_name: str
    ext: str
    size: int
    mtime: float
    sha256: str
    loader: str
    splitter: str
    chunk_size: int
    chunk_overlap: int
    zh_title_enhance: bool
    custom_docs: bool = False
    ocr: bool = False  # some of its text was read by OCR


def get_kb(session: Session, name: str) -> KnowledgeBase | None:
    return session.scalar(select(KnowledgeBase).where(KnowledgeBase.name == name))


def require_kb(session: Session, name: str) -> KnowledgeBase:
    kb = get_kb(session, name)
    if kb is None:
        raise kb_not_found(name)
    return kb


def kb_not_found(name: str) -> KnowledgeBaseNotFound:
    """The one answer for a KB that does not exist, also given to a key that may not know it exists."""
    return KnowledgeBaseNotFound(
        f"knowledge base {name!r} does not exist; list them with GET /knowledge_base/list_knowledge_bases"
    )


def list_kbs(session: Session) -> list[KnowledgeBase]:
    return list(session.scalars(select(KnowledgeBase).order_by(KnowledgeBase.name)))


def recent_kb_names(session: Session, limit: int) -> list[str]:
    """KB names by their newest registered file (file ids only grow), then the newest KB; empty KBs last."""
    newest = func.coalesce(func.max(KnowledgeFile.id), 0)
    query = (
        select(KnowledgeBase.name)
        .outerjoin(KnowledgeFile, KnowledgeFile.kb_id == KnowledgeBase.id)
        .group_by(KnowledgeBase.id, KnowledgeBase.name)
        .order_by(newest.desc(), KnowledgeBase.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def require_no_kb(session: Session, name: str) -> None:
    if get_kb(session, name) is not None:
        raise KnowledgeBaseExists(f"knowledge base {name!r} already exists; pick another name or delete it first")


def add_kb(session: Session, *, name: str, info: str, vs_type: str, embed_model: str) -> KnowledgeBase:
    require_no_kb(session, name)
    kb = KnowledgeBase(name=name, info=info, vs_type=vs_type, embed_model=embed_model)
    session.add(kb)
    session.flush()
    return kb


def delete_kb(session: Session, kb: KnowledgeBase) -> None:
    session.delete(kb)
    session.flush()


def get_file(session: Session, *, kb_id: int, file_name: str) -> KnowledgeFile | None:
    return session.scalar(
        select(KnowledgeFile).where(KnowledgeFile.kb_id == kb_id, KnowledgeFile.file_name == file_name)
    )


def list_files(
    session: Session,
    *,
    kb_id: int,
    offset: int = 0,
    limit: int | None = None,
    order_by: FileOrder = "file_name",
    descending: bool = False,
) -> list[KnowledgeFile]:
    column = getattr(KnowledgeFile, order_by)
    query = (
        select(KnowledgeFile)
        .where(KnowledgeFile.kb_id == kb_id)
        .order_by(column.desc() if descending else column.asc(), KnowledgeFile.id)
        .offset(offset)
        .limit(limit)
    )
    return list(session.scalars(query))


def file_facts(session: Session, *, kb_id: int) -> list[Any]:
    """Each file's name, extension, tags, mtime, created_at and enabled flag: what a search filter looks at."""
    columns = (KnowledgeFile.file_name, KnowledgeFile.ext, KnowledgeFile.tags, KnowledgeFile.mtime)
    query = select(*columns, KnowledgeFile.created_at, KnowledgeFile.enabled).where(KnowledgeFile.kb_id == kb_id)
    return list(session.execute(query))


def has_disabled_files(session: Session, *, kb_id: int) -> bool:
    query = select(KnowledgeFile.id).where(KnowledgeFile.kb_id == kb_id, KnowledgeFile.enabled.is_(False)).limit(1)
    return session.scalar(query) is not None


def file_labels(session: Session, *, kb_id: int) -> dict[str, tuple[list[str], bool]]:
    """{file name: (tags, enabled)}: what the user set on each file, which a rebuild must carry over."""
    query = select(KnowledgeFile.file_name, KnowledgeFile.tags, KnowledgeFile.enabled).where(
        KnowledgeFile.kb_id == kb_id
    )
    return {name: (list(tags or []), bool(enabled)) for name, tags, enabled in session.execute(query)}


def count_files(session: Session, *, kb_id: int) -> int:
    return session.scalar(select(func.count()).where(KnowledgeFile.kb_id == kb_id)) or 0


def count_chunks(session: Session, *, kb_id: int) -> int:
    return session.scalar(select(func.count()).where(Chunk.kb_id == kb_id)) or 0


def file_vs_ids(session: Session, *, file_id: int) -> list[str]:
    return list(session.scalars(select(Chunk.vs_id).where(Chunk.file_id == file_id).order_by(Chunk.id)))


def kb_vs_ids(session: Session, *, kb_id: int) -> list[str]:
    return list(session.scalars(select(Chunk.vs_id).where(Chunk.kb_id == kb_id)))


def chunks_by_vs_id(session: Session, *, kb_id: int, vs_ids: Sequence[str]) -> dict[str, Chunk]:
    rows = session.scalars(select(Chunk).where(Chunk.kb_id == kb_id, Chunk.vs_id.in_(list(vs_ids))))
    return {row.vs_id: row for row in rows}


def save_file(
    session: Session,
    *,
    kb_id: int,
    record: FileRecord,
    vs_ids: Sequence[str],
    metas: Sequence[dict[str, Any]],
) -> KnowledgeFile:
    """Insert or replace a file row and its chunk rows; a replaced file's version goes up by one."""
    row = get_file(session, kb_id=kb_id, file_name=record.file_name)
    if row is None:
        row = KnowledgeFile(kb_id=kb_id, version=1, **asdict(record))
        session.add(row)
    else:
        session.execute(delete(Chunk).where(Chunk.file_id == row.id))
        for key, value in asdict(record).items():
            setattr(row, key, value)
        row.version += 1
        row.updated_at = utcnow()
    row.chunk_count = len(vs_ids)
    session.flush()
    add_chunks(session, kb_id=kb_id, file_id=row.id, vs_ids=vs_ids, metas=metas)
    return row


def add_chunks(
    session: Session, *, kb_id: int, file_id: int, vs_ids: Sequence[str], metas: Sequence[dict[str, Any]]
) -> None:
    if vs_ids:
        rows = [
            {"kb_id": kb_id, "file_id": file_id, "vs_id": vs_id, "meta": meta}
            for vs_id, meta in zip(vs_ids, metas, strict=True)
        ]
        session.execute(insert(Chunk), rows)


def delete_chunks(session: Session, *, kb_id: int, vs_ids: Sequence[str]) -> None:
    session.execute(delete(Chunk).where(Chunk.kb_id == kb_id, Chunk.vs_id.in_(list(vs_ids))))


def refresh_chunk_count(session: Session, *, file: KnowledgeFile) -> None:
    file.chunk_count = session.scalar(select(func.count()).where(Chunk.file_id == file.id)) or 0
    file.updated_at = utcnow()


def delete_file(session: Session, file: KnowledgeFile) -> None:
    session.delete(file)
    session.flush()


def files_by_sha256(session: Session, *, kb_id: int, digests: Sequence[str]) -> dict[str, str]:
    """{sha256: a registered file with that content} among `digests`."""
    rows = session.execute(
        select(KnowledgeFile.sha256, KnowledgeFile.file_name)
        .where(KnowledgeFile.kb_id == kb_id, KnowledgeFile.sha256.in_([d for d in digests if d]))
        .order_by(KnowledgeFile.file_name)
    ).all()
    found: dict[str, str] = {}
    for digest, name in rows:
        found.setdefault(digest, name)
    return found


def file_digests(session: Session, *, kb_id: int) -> dict[str, str]:
    """{file name: sha256} of every registered file of a KB."""
    rows = session.execute(
        select(KnowledgeFile.file_name, KnowledgeFile.sha256).where(KnowledgeFile.kb_id == kb_id)
    ).all()
    return {name: digest for name, digest in rows}
