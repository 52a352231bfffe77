"""Typed records the Web UI reads from the HTTP API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.server_configs import ServerConfigs


@dataclass(frozen=True)
class KbInfo:
    name: str
    info: str
    vs_type: str
    embed_model: str
    file_count: int
    search_mode: str = ""  # "" = the server's global default
    direct_answer_threshold: float | None = None  # None = the server's kb.direct_answer_threshold

    @classmethod
    def from_api(cls, row: dict[str, Any]) -> KbInfo:
        return cls(
            name=str(row["name"]),
            info=str(row.get("info") or ""),
            vs_type=str(row.get("vs_type") or ""),
            embed_model=str(row.get("embed_model") or ""),
            file_count=int(row.get("file_count") or 0),
            search_mode=str(row.get("search_mode") or ""),
            direct_answer_threshold=row.get("direct_answer_threshold"),
        )


@dataclass(frozen=True)
class FileRow:
    file_name: str
    ext: str
    size: int
    chunk_count: int
    loader: str
    custom_docs: bool
    ocr: bool
    updated_at: str
    in_folder: bool
    in_db: bool
    tags: tuple[str, ...] = ()
    enabled: bool = True  # False: kept, but never retrieved

    @classmethod
    def from_api(cls, row: dict[str, Any]) -> FileRow:
        return cls(
            file_name=str(row["file_name"]),
            ext=str(row.get("ext") or ""),
            size=int(row.get("size") or 0),
            chunk_count=int(row.get("chunk_count") or 0),
            loader=str(row.get("loader") or ""),
            custom_docs=bool(row.get("custom_docs")),
            ocr=bool(row.get("ocr")),
            updated_at=str(row.get("updated_at") or ""),
            in_folder=bool(row.get("in_folder")),
            in_db=bool(row.get("in_db")),
            tags=tuple(str(tag) for tag in row.get("tags") or ()),
            enabled=bool(row.get("enabled", True)),
        )


@dataclass(frozen=True)
class FilePage:
    total: int
    offset: int
    files: list[FileRow]


@dataclass(frozen=True)
class Chunk:
    id: str
    page_content: str
    metadata: dict[str, Any]
    score: float | None = None

    @classmethod
    def from_api(cls, row: dict[str, Any]) -> Chunk:
        score = row.get("score")
        return cls(
            id=str(row.get("id") or ""),
            page_content=str(row.get("page_content") or ""),
            metadata=dict(row.get("metadata") or {}),
            score=None if score is None else float(score),
        )

    @property
    def source(self) -> str:
        return str(self.metadata.get("source") or "")

    @property
    def page(self) -> int | None:
        page = self.metadata.get("page")
        return page if isinstance(page, int) else None


@dataclass(frozen=True)
class RebuildEvent:
    code: int
    msg: str
    total: int | None
    finished: int | None
    doc: str
    failed_files: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, event: dict[str, Any]) -> RebuildEvent:
        return cls(
            code=int(event.get("code") or 200),
            msg=str(event.get("msg") or ""),
            total=event.get("total"),
            finished=event.get("finished"),
            doc=str(event.get("doc") or ""),
            failed_files=dict(event.get("failed_files") or {}),
        )


@dataclass(frozen=True)
class ChatPiece:
    """One streamed chat event: a piece of the answer, the sources, or the message id (for feedback)."""

    text: str = ""
    docs: tuple[str, ...] = ()
    message_id: str = ""
    direct_answer: dict[str, Any] | None = None  # the answer is a FAQ's stored one (no model wrote it)
    rewritten_query: str = ""  # a follow-up question as it was searched

    @classmethod
    def from_api(cls, event: dict[str, Any]) -> ChatPiece:
        docs = event.get("docs") or ()
        direct = event.get("direct_answer")
        return cls(
            text=str(event.get("text") or event.get("answer") or ""),
            docs=tuple(str(doc) for doc in docs),
            message_id=str(event.get("message_id") or ""),
            direct_answer=direct if isinstance(direct, dict) else None,
            rewritten_query=str(event.get("rewritten_query") or ""),
        )


@dataclass(frozen=True)
class UiDefaults:
    """The forms' defaults and choices, all read from the API's /server/configs (the UI keeps no copies)."""

    vs_types: tuple[str, ...]
    default_vs_type: str
    embed_models: tuple[str, ...]
    default_embed_model: str
    chunk_size: int
    chunk_overlap: int
    zh_title_enhance: bool
    top_k: int
    score_threshold: float
    search_mode: str
    search_modes: tuple[str, ...]
    temperature: float
    history_len: int
    default_llm: str
    file_types: tuple[str, ...]  # extensions without the dot, as st.file_uploader takes them
    max_upload_bytes: int  # the API refuses a larger request body (api.max_upload_mb)
    prompt_templates: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_configs(cls, configs: ServerConfigs) -> UiDefaults:
        return cls(
            vs_types=tuple(configs.vector_store_types),
            default_vs_type=configs.default_vs_type,
            embed_models=tuple(configs.embed_models),
            default_embed_model=configs.default_embed_model,
            chunk_size=configs.chunk_size,
            chunk_overlap=configs.chunk_overlap,
            zh_title_enhance=configs.zh_title_enhance,
            top_k=configs.top_k,
            score_threshold=configs.score_threshold,
            search_mode=configs.search_mode,
            search_modes=tuple(configs.search_modes),
            temperature=configs.temperature,
            history_len=configs.history_len,
            default_llm=configs.default_llm or "",
            file_types=tuple(item.extension.lstrip(".") for item in configs.file_types),
            max_upload_bytes=int(configs.max_upload_mb * 1024 * 1024),
            prompt_templates={kind: tuple(names) for kind, names in configs.prompt_templates.items()},
        )


ACTIVE_JOB_STATES = ("queued", "running")
ENDED_FILE_STATES = ("done", "duplicate", "failed", "cancelled")  # nothing more will happen to such a file


@dataclass(frozen=True)
class JobFile:
    """One file of an ingestion job; `error` says why it failed, or which file it duplicates."""

    file_name: str
    state: str
    error: str
    size: int
    chunk_count: int
    attempts: int

    @classmethod
    def from_api(cls, row: dict[str, Any]) -> JobFile:
        return cls(
            file_name=str(row["file_name"]),
            state=str(row.get("state") or ""),
            error=str(row.get("error") or ""),
            size=int(row.get("size") or 0),
            chunk_count=int(row.get("chunk_count") or 0),
            attempts=int(row.get("attempts") or 0),
        )


@dataclass(frozen=True)
class Job:
    """A background ingestion job as /knowledge_base/jobs shows it; `files` only in the detail of one job."""

    job_id: str
    knowledge_base_name: str
    kind: str
    state: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    total_files: int
    counts: dict[str, int]
    progress: float
    chunks: int
    bytes_total: int
    bytes_done: int
    files_per_s: float
    chunks_per_s: float
    eta_s: float | None
    files: tuple[JobFile, ...] | None = None

    @classmethod
    def from_api(cls, row: dict[str, Any]) -> Job:
        files = row.get("files")
        eta = row.get("eta_s")
        return cls(
            job_id=str(row["job_id"]),
            knowledge_base_name=str(row.get("knowledge_base_name") or ""),
            kind=str(row.get("kind") or ""),
            state=str(row.get("state") or ""),
            created_at=str(row.get("created_at") or ""),
            started_at=_optional_text(row.get("started_at")),
            finished_at=_optional_text(row.get("finished_at")),
            total_files=int(row.get("total_files") or 0),
            counts={str(state): int(n) for state, n in (row.get("counts") or {}).items()},
            progress=float(row.get("progress") or 0.0),
            chunks=int(row.get("chunks") or 0),
            bytes_total=int(row.get("bytes_total") or 0),
            bytes_done=int(row.get("bytes_done") or 0),
            files_per_s=float(row.get("files_per_s") or 0.0),
            chunks_per_s=float(row.get("chunks_per_s") or 0.0),
            eta_s=None if eta is None else float(eta),
            files=None if files is None else tuple(JobFile.from_api(item) for item in files),
        )

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_JOB_STATES

    @property
    def ended_files(self) -> int:
        return sum(self.counts.get(state, 0) for state in ENDED_FILE_STATES)

    @property
    def failed_files(self) -> int:
        return self.counts.get("failed", 0)


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)
