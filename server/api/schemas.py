"""Response models: what each route's `data` holds, for /docs and for clients that validate what they get.

Routes answer with `Envelope` (server/api/envelope.py), whose bytes the Chatchat 0.2 clients expect; these models
describe those bytes. tests/test_openapi.py checks that real answers validate against them.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from server.jobs.sync import SyncReport
from server.jobs.views import JobFileView, JobView
from server.knowledge_base.files import FileDetail
from server.knowledge_base.service import KbSummary
from server.retrieval.modes import KbSearchMode

__all__ = [
    "FileDetail",
    "JobFileView",
    "JobView",
    "KbSummary",
    "SyncReport",
]  # the services' own records describe those answers

DataT = TypeVar("DataT")


class Reply(BaseModel, Generic[DataT]):
    """The envelope every JSON route answers with; the HTTP status always equals `code`."""

    code: int = Field(200, examples=[200])
    msg: str = Field("success", description="what happened, or what went wrong and what to do")
    data: DataT


class ErrorReply(BaseModel):
    """An error: `code` is the HTTP status, `msg` says what went wrong and what to do (never a stack trace)."""

    code: int = Field(examples=[422])
    msg: str
    data: Any = Field(None, description="null, or the per-file failures of an upload or delete")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorReply, "description": description}
    for status, description in {
        401: "missing or wrong API key (when api.api_key is set)",
        404: "no such knowledge base, file, chunk or model",
        422: "invalid request: which field and why",
        503: "a vector store, embedding model or LLM endpoint is not reachable",
    }.items()
}


class KbInfoOut(BaseModel):
    kb_info: str


class FolderSyncOut(BaseModel):
    sync_folder: bool
    scan: SyncReport | None = Field(None, description="when turned on: what the first look at the folder found")


class SearchModeOut(BaseModel):
    search_mode: KbSearchMode


class OcrModeOut(BaseModel):
    ocr_mode: str = Field(description='auto, always, never, or "" (follows ocr.mode)')


class FilePageOut(BaseModel):
    total: int
    offset: int
    files: list[FileDetail]


class FailedFilesOut(BaseModel):
    failed_files: dict[str, str] = Field(description="{file name: why it failed}; empty when every file worked")


class FailedIdsOut(BaseModel):
    failed_ids: dict[str, str] = Field(description="{chunk id: why it failed}")


class DocumentOut(BaseModel):
    id: str
    page_content: str
    metadata: dict[str, Any]
    type: str = "Document"
    score: float | None = Field(
        description="in [0, 1], higher is better (cosine, mapped BM25 or rank fusion: see docs/retrieval.md); "
        "null when listing a file"
    )


class RebuildEventOut(BaseModel):
    """One Server-Sent Event of recreate_vector_store: a file done (code 200) or failed, then a final summary."""

    code: int
    msg: str
    total: int | None = None
    finished: int | None = None
    doc: str | None = None
    failed_files: dict[str, str] | None = Field(None, description="in the last event: files left out and why")
    summary: str | None = Field(None, description="summary_file_to_vector_store: the summary written")


class SummarizeOut(BaseModel):
    summarize: list[dict[str, Any]] = Field(description='[{"page_content": summary, "metadata", "id"}]')


class TempDocsOut(BaseModel):
    id: str = Field(description="the knowledge_id for /chat/file_chat")
    failed_files: list[dict[str, str]]


class ChatEventOut(BaseModel):
    """One Server-Sent Event of /chat/chat."""

    text: str | None = None
    message_id: str | None = None
    conversation_id: str | None = None
    code: int | None = Field(None, description="set when the answer stopped with an error")
    msg: str | None = None


class AnswerEventOut(BaseModel):
    """One Server-Sent Event of knowledge-base and file chat: answer pieces, then the sources."""

    answer: str | None = None
    docs: list[str] | None = Field(None, description="Markdown citations, in the last event")
    rewritten_query: str | None = Field(None, description="KB chat: the follow-up as it was searched, when rewritten")
    direct_answer: dict[str, Any] | None = Field(
        None, description="KB chat: the answer is a FAQ's stored one (file_name, faq_id, question, score, exact)"
    )
    code: int | None = Field(None, description="set when the answer stopped with an error")
    msg: str | None = None


class AgentEventOut(BaseModel):
    """One Server-Sent Event of agent chat: text beside tool calls, one tool call, or the final answer."""

    answer: str | None = None
    tools: list[str] | None = Field(None, description="lines describing one tool call (Markdown code fence)")
    final_answer: str | None = None
    code: int | None = Field(None, description="set when the answer stopped with an error")
    msg: str | None = None


class ModelConfigOut(BaseModel):
    """A configured chat model's settings; secrets (api_key, credentials in URLs) never leave the server."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    name: str
    default: bool
    engine: str
    model: str | None = None
    base_url: str | None = None
    state: str | None = Field(None, description="online, or a local model's: loaded, loading, unloaded, failed")
    progress: float | None = Field(None, description="while loading: 0 to 1, by stage (tokenizer, weights, adapter)")
    memory_bytes: int | None = Field(None, description="what a local model takes (measured once loaded)")


class ModelStateOut(BaseModel):
    """A local model's state in our LLM worker."""

    name: str
    state: str = Field(description="loaded, loading, unloaded or failed")
    progress: float = Field(description="while loading: 0 to 1, by stage")
    stage: str = Field(description="queued, tokenizer, weights, adapter, ready")
    device: str = Field(description="gpu or cpu: whose memory budget it counts against")
    memory_bytes: int
    error: str = Field(description="why the last load failed")


class HealthOut(BaseModel):
    status: str = "ok"
    version: str


class FinetuneRunOut(BaseModel):
    """A fine-tuning run: its state, progress and loss curve ([step, loss] pairs, at most 200 of each)."""

    model_config = ConfigDict(protected_namespaces=())

    name: str
    base_model: str
    method: str
    state: str = Field(description="running, done, failed, cancelled, or interrupted (start it again to resume)")
    step: int
    max_steps: int
    progress: float = Field(ge=0.0, le=1.0)
    resumed_from: int = Field(description="the checkpoint step this process started from (0: from scratch)")
    checkpoint: int = Field(description="the last checkpoint's step: what a restart resumes from")
    steps_per_s: float
    loss: list[tuple[int, float]]
    eval_loss: list[tuple[int, float]]
    error: str
    model_name: str | None = Field(description="the new model (base + adapter) once done; chat with it by name")
