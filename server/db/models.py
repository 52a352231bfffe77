"""Registry tables: knowledge bases, their files, and the vector-store ids of each file's chunks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 with the UTC offset; SQLite hands timestamps back without their zone."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def new_collection_name() -> str:
    """A fresh store-side name: ASCII, starts with a letter, valid for Milvus collections and SQL tables."""
    return f"zk_{uuid.uuid4().hex[:16]}"


class Base(DeclarativeBase):
    pass


class KnowledgeBase(Base):
    __tablename__ = "knowledge_base"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    info: Mapped[str] = mapped_column(Text, default="", nullable=False)
    vs_type: Mapped[str] = mapped_column(String(32), nullable=False)
    embed_model: Mapped[str] = mapped_column(String(128), nullable=False)
    vs_collection: Mapped[str] = mapped_column(String(64), default=new_collection_name, nullable=False)
    search_mode: Mapped[str] = mapped_column(String(16), default="", nullable=False)  # "" = the global default
    sync_folder: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)  # follow content/ (jobs)
    ocr_mode: Mapped[str] = mapped_column(String(8), default="", nullable=False)  # "" = the global ocr.mode
    # FAQ hits scoring above it are answered with their stored answer; None = kb.direct_answer_threshold
    direct_answer_threshold: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)

    files: Mapped[list[KnowledgeFile]] = relationship(
        back_populates="kb", cascade="all, delete-orphan", passive_deletes=True
    )


class KnowledgeFile(Base):
    __tablename__ = "knowledge_file"
    __table_args__ = (UniqueConstraint("kb_id", "file_name", name="uq_file_kb_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kb_id: Mapped[int] = mapped_column(ForeignKey("knowledge_base.id", ondelete="CASCADE"), index=True)
    file_name: Mapped[str] = mapped_column(String(1024), nullable=False)
    ext: Mapped[str] = mapped_column(String(16), nullable=False)
    size: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    mtime: Mapped[float] = mapped_column(Float, default=0.0, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), default="", nullable=False)
    loader: Mapped[str] = mapped_column(String(64), default="", nullable=False)
    splitter: Mapped[str] = mapped_column(String(64), default="", nullable=False)
    chunk_size: Mapped[int] = mapped_column(Integer, nullable=False)
    chunk_overlap: Mapped[int] = mapped_column(Integer, nullable=False)
    zh_title_enhance: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    custom_docs: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    ocr: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)  # some of its text was read by OCR
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)  # False: never retrieved
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )

    kb: Mapped[KnowledgeBase] = relationship(back_populates="files")
    chunks: Mapped[list[Chunk]] = relationship(
        back_populates="file", cascade="all, delete-orphan", passive_deletes=True
    )


class Chunk(Base):
    __tablename__ = "chunk"
    __table_args__ = (UniqueConstraint("kb_id", "vs_id", name="uq_chunk_kb_vs_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kb_id: Mapped[int] = mapped_column(ForeignKey("knowledge_base.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("knowledge_file.id", ondelete="CASCADE"), index=True)
    vs_id: Mapped[str] = mapped_column(String(64), nullable=False)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)

    file: Mapped[KnowledgeFile] = relationship(back_populates="chunks")


class PendingWrite(Base):
    """A write to a knowledge base that has begun and not yet finished (the write journal).

    `state` "pending": the registry does not show it yet, so recovery undoes it; "committed": the registry shows it,
    so recovery finishes what follows (dropping replaced chunks, moving files). `owner` is the writer lease of the
    process doing it; `payload` holds what recovery needs (chunk ids, store locations, staged files).
    Not tied to the knowledge_base row by a foreign key: the deletion of a knowledge base is journaled too.
    """

    __tablename__ = "pending_write"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kb_name: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    owner: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class Conversation(Base):
    """A chat session; its messages are kept so a conversation_id brings back its history."""

    __tablename__ = "conversation"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: uuid.uuid4().hex)
    name: Mapped[str] = mapped_column(String(256), default="", nullable=False)
    chat_type: Mapped[str] = mapped_column(String(32), default="llm_chat", nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", passive_deletes=True
    )


class Message(Base):
    """One question and its answer, with the user's feedback on it."""

    __tablename__ = "message"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: uuid.uuid4().hex)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversation.id", ondelete="CASCADE"), index=True, nullable=False
    )
    chat_type: Mapped[str] = mapped_column(String(32), default="llm_chat", nullable=False)
    query: Mapped[str] = mapped_column(Text, nullable=False)
    response: Mapped[str] = mapped_column(Text, default="", nullable=False)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    feedback_score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    feedback_reason: Mapped[str] = mapped_column(Text, default="", nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class IngestJob(Base):
    """A batch of files to ingest into one knowledge base in the background (server/jobs).

    `state`: queued, running, done (every file done or skipped), failed (finished, some files failed), cancelled.
    `options` holds how the files are split and whether they replace registered ones.
    """

    __tablename__ = "ingest_job"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: uuid.uuid4().hex)
    kb_name: Mapped[str] = mapped_column(String(64), index=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), default="upload", nullable=False)
    state: Mapped[str] = mapped_column(String(16), index=True, nullable=False)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    files: Mapped[list[IngestJobFile]] = relationship(
        back_populates="job", cascade="all, delete-orphan", passive_deletes=True, order_by="IngestJobFile.id"
    )


class IngestJobFile(Base):
    """One file of a job. `state`: queued, parsing, embedding, writing, done, failed (`error` says why),
    cancelled, duplicate (same content as `error` names, skipped). `owner` is the writer lease of the process
    working on it, so a file claimed by a process that died goes back to the queue."""

    __tablename__ = "ingest_job_file"
    __table_args__ = (UniqueConstraint("job_id", "file_name", name="uq_job_file_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("ingest_job.id", ondelete="CASCADE"), index=True)
    file_name: Mapped[str] = mapped_column(String(1024), nullable=False)
    staged: Mapped[str] = mapped_column(String(1024), default="", nullable=False)  # relative to the data dir
    size: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), default="", nullable=False)
    state: Mapped[str] = mapped_column(String(16), index=True, nullable=False)
    error: Mapped[str] = mapped_column(Text, default="", nullable=False)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    owner: Mapped[str] = mapped_column(String(64), default="", nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    job: Mapped[IngestJob] = relationship(back_populates="files")


class ApiKey(Base):
    """A key scoped to some knowledge bases (issued by the admin key). Only a SHA-256 of the secret is kept;
    `prefix` (its first characters) lets people tell keys apart. `kbs` lists the KB names it reaches; `right` is
    "read" (search, chat, download) or "write" (also upload, delete, edit, rebuild)."""

    __tablename__ = "api_key"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: uuid.uuid4().hex)
    name: Mapped[str] = mapped_column(String(128), default="", nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    kbs: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    right: Mapped[str] = mapped_column(String(8), nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class AuditEntry(Base):
    """One write request: who (`actor`: "admin", "anonymous" or "key:<id>"), what (`action`, the route), which
    KB and files, when, and its result (the HTTP status)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True, nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    action: Mapped[str] = mapped_column(String(128), nullable=False)
    kb_name: Mapped[str] = mapped_column(String(64), default="", index=True, nullable=False)
    files: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    detail: Mapped[str] = mapped_column(Text, default="", nullable=False)
