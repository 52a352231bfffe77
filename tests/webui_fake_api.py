"""An in-memory stand-in for the HTTP API, for the Streamlit AppTest page tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from configs import Settings
from server.bootstrap import server_configs
from server.bootstrap_chat import PROMPT_TEMPLATES_FILE
from server.chat.prompts import load_prompt_templates
from server.server_configs import ServerConfigs
from webui_pages.api_client import ApiClient, ApiError, UploadFile
from webui_pages.api_types import (
    ENDED_FILE_STATES,
    ChatPiece,
    Chunk,
    FilePage,
    FileRow,
    Job,
    JobFile,
    KbInfo,
    RebuildEvent,
    UiDefaults,
)
from webui_pages.kb_jobs import FILE_STATES


def fake_server_configs() -> ServerConfigs:
    """What the real API's /server/configs answers with the hash test embedder as the default model."""
    settings = Settings(embed_models={"hash": {"backend": "hash", "dim": 64}}, kb={"default_embed_model": "hash"})
    return server_configs(settings, load_prompt_templates(PROMPT_TEMPLATES_FILE))


def fake_ui_defaults() -> UiDefaults:
    return UiDefaults.from_configs(fake_server_configs())


def file_row(name: str, chunks: int) -> FileRow:
    ext = name.rsplit(".", 1)[-1]
    return FileRow(name, ext, 1234, chunks, "text", False, False, "2026-01-01T00:00:00", True, True)


def fake_job(job_id: str, kb: str, files: Sequence[JobFile], *, state: str = "", kind: str = "upload") -> Job:
    """A job whose counts, progress and state follow from its files (as the API derives them)."""
    counts = {name: sum(f.state == name for f in files) for name in FILE_STATES}
    ended = sum(counts[name] for name in ENDED_FILE_STATES)
    if not state:
        state = "running" if ended < len(files) else ("failed" if counts["failed"] else "done")
    active = state in ("queued", "running")
    return Job(
        job_id=job_id,
        knowledge_base_name=kb,
        kind=kind,
        state=state,
        created_at="2026-01-01T08:00:00+00:00",
        started_at="2026-01-01T08:00:01+00:00",
        finished_at=None if active else "2026-01-01T08:02:01+00:00",
        total_files=len(files),
        counts=counts,
        progress=ended / len(files) if files else 1.0,
        chunks=sum(f.chunk_count for f in files),
        bytes_total=sum(f.size for f in files),
        bytes_done=sum(f.size for f in files if f.state == "done"),
        files_per_s=2.1 if counts["done"] else 0.0,
        chunks_per_s=4.2 if counts["done"] else 0.0,
        eta_s=60.0 if active else 0.0,
        files=tuple(files),
    )


def job_file(name: str, state: str = "done", error: str = "", attempts: int = 1) -> JobFile:
    return JobFile(name, state, error, 100, 1 if state == "done" else 0, attempts)


class FakeApi(ApiClient):
    """Knowledge bases, files and chunks in dictionaries; `down` makes every call fail as if unreachable."""

    def __init__(self) -> None:
        super().__init__("http://fake-api")
        self.down = False
        self.kbs: dict[str, KbInfo] = {"样例库": KbInfo("样例库", "示例", "faiss", "hash", 2)}
        self.files: dict[str, dict[str, FileRow]] = {
            "样例库": {"a.md": file_row("a.md", 2), "b.txt": file_row("b.txt", 1)}
        }
        self.chunks: dict[str, list[Chunk]] = {
            "a.md": [Chunk("c1", "第一段", {"source": "a.md"}), Chunk("c2", "第二段", {"source": "a.md"})],
            "b.txt": [Chunk("c3", "另一个文件", {"source": "b.txt", "page": 2})],
        }
        self.calls: list[tuple[str, Any]] = []
        self.models: list[str] = []
        self.states: dict[str, dict[str, Any]] = {}  # list_running_models: name -> {"state", "progress", ...}
        self.answer = ["你好", "，世界"]
        self.direct_answer: dict[str, Any] | None = None  # sent with the sources when set
        self.last_upload_params: dict[str, Any] = {}
        self.chat_error: ApiError | None = None
        self.jobs: dict[str, Job] = {}  # oldest first, as they were queued

    def _check(self, name: str, args: Any = None) -> None:
        if self.down:
            raise ApiError("cannot reach the API at http://fake-api: [Errno 111] Connection refused")
        self.calls.append((name, args))

    def list_kbs(self) -> list[KbInfo]:
        self._check("list_kbs")
        return list(self.kbs.values())

    def update_search_mode(self, name: str, search_mode: str) -> None:
        self._check("update_search_mode", (name, search_mode))
        self.kbs[name] = dataclasses.replace(self.kbs[name], search_mode=search_mode)

    def create_kb(self, name: str, *, info: str, vs_type: str, embed_model: str) -> None:
        self._check("create_kb", (name, vs_type, embed_model))
        if name in self.kbs:
            raise ApiError(f"knowledge base {name!r} already exists", 409)
        self.kbs[name] = KbInfo(name, info, vs_type, embed_model, 0)
        self.files[name] = {}

    def delete_kb(self, name: str) -> None:
        self._check("delete_kb", name)
        del self.kbs[name]

    def update_kb_info(self, name: str, info: str) -> None:
        self._check("update_kb_info", (name, info))

    def list_file_names(self, kb: str) -> list[str]:
        self._check("list_file_names", kb)
        return sorted(self.files[kb])

    def list_file_details(
        self, kb: str, *, offset: int, limit: int, order_by: str = "file_name", descending: bool = False
    ) -> FilePage:
        self._check("list_file_details", (offset, limit, order_by, descending))
        rows = sorted(self.files[kb].values(), key=lambda row: getattr(row, order_by), reverse=descending)
        return FilePage(len(rows), offset, rows[offset : offset + limit])

    def list_folder_only_files(self, kb: str) -> list[str]:
        self._check("list_folder_only_files", kb)
        return ["new.md"]

    def upload_docs(self, kb: str, files: Sequence[UploadFile], **params: Any) -> dict[str, str]:
        self._check("upload_docs", [name for name, _ in files])
        failed = {name: "unsupported file type .exe" for name, _ in files if name.endswith(".exe")}
        for name, _ in files:
            if name not in failed:
                self.files[kb][name] = file_row(name, 1)
        return failed

    def upload_docs_in_background(self, kb: str, files: Sequence[UploadFile], **params: Any) -> Job:
        """The fake's workers are instant: a blank file fails to parse, every other file is done."""
        self._check("upload_docs_in_background", [name for name, _ in files])
        self.last_upload_params = params
        rows = [
            job_file(name, "failed", "no text could be extracted") if not data.strip() else job_file(name)
            for name, data in files
        ]
        for row in rows:
            if row.state == "done":
                self.files[kb][row.file_name] = file_row(row.file_name, 1)
        job = fake_job(f"job{len(self.jobs) + 1:04d}", kb, rows)
        self.jobs[job.job_id] = job
        return job

    def list_jobs(self, kb: str | None = None, *, state: str | None = None, limit: int = 50) -> list[Job]:
        self._check("list_jobs", (kb, state, limit))
        jobs = [job for job in reversed(self.jobs.values()) if kb in (None, job.knowledge_base_name)]
        return [dataclasses.replace(job, files=None) for job in jobs if state in (None, job.state)][:limit]

    def get_job(self, job_id: str, *, file_state: str = "", offset: int = 0, limit: int | None = None) -> Job:
        """As the API: the files in `file_state` (all without it), failed ones first, then in upload order."""
        self._check("get_job", (job_id, file_state, offset, limit))
        job = self._job(job_id)
        rows = [f for f in job.files or () if file_state in ("", f.state)]
        rows.sort(key=lambda f: f.state != "failed")  # a stable sort keeps the upload order otherwise
        end = None if limit is None else offset + limit
        return dataclasses.replace(job, files=tuple(rows[offset:end]))

    def _job(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise ApiError(f"job {job_id} not found", 404)
        return self.jobs[job_id]

    def cancel_job(self, job_id: str) -> Job:
        job = self._job(job_id)
        self.calls.append(("cancel_job", job_id))
        if not job.active:
            raise ApiError(f"job {job_id} has already ended ({job.state})", 409)
        rows = [dataclasses.replace(f, state="cancelled") if f.state == "queued" else f for f in job.files or ()]
        self.jobs[job_id] = fake_job(job_id, job.knowledge_base_name, rows, state="cancelled")
        return self.jobs[job_id]

    def retry_job(self, job_id: str) -> Job:
        """As the API: the failed files are queued again, one attempt more, and the job with them."""
        job = self._job(job_id)
        self.calls.append(("retry_job", job_id))
        if not job.failed_files:
            raise ApiError(f"job {job_id} has no failed files to retry", 409)
        rows = [
            dataclasses.replace(f, state="queued", error="", attempts=f.attempts + 1) if f.state == "failed" else f
            for f in job.files or ()
        ]
        self.jobs[job_id] = fake_job(job_id, job.knowledge_base_name, rows, state="queued")
        return self.jobs[job_id]

    def delete_docs(self, kb: str, file_names: Sequence[str], *, delete_content: bool) -> dict[str, str]:
        self._check("delete_docs", (list(file_names), delete_content))
        for name in file_names:
            self.files[kb].pop(name, None)
        return {}

    def update_docs(self, kb: str, file_names: Sequence[str], **params: Any) -> dict[str, str]:
        self._check("update_docs", list(file_names))
        return {}

    def search_docs(
        self,
        kb: str | Sequence[str],
        query: str,
        *,
        top_k: int,
        score_threshold: float,
        search_mode: str = "",
        tags_any: Sequence[str] = (),
    ) -> list[Chunk]:
        self._check("search_docs", (query, top_k, score_threshold, search_mode, *tags_any))
        several = not isinstance(kb, str) and len(kb) > 1
        hits = []
        for rank, chunk in enumerate(self.chunks["a.md"]):
            meta = {**chunk.metadata, "kb": "样例库"} if several else chunk.metadata
            hits.append(Chunk(chunk.id, chunk.page_content, meta, 0.9 - rank / 10))
        return hits[:top_k]

    def list_chunks(self, kb: str, file_name: str) -> list[Chunk]:
        self._check("list_chunks", file_name)
        return list(self.chunks[file_name])

    def update_chunks(self, kb: str, docs: dict[str, dict[str, Any] | None]) -> dict[str, str]:
        self._check("update_chunks", docs)
        return {}

    def recreate_vector_store(self, kb: str, *, chunk_size: int, chunk_overlap: int) -> Iterator[RebuildEvent]:
        self._check("recreate_vector_store", kb)
        names = sorted(self.files[kb])
        for i, name in enumerate(names, start=1):
            yield RebuildEvent(200, f"({i} / {len(names)}): {name}", len(names), i, name)

    def list_models(self) -> list[str]:
        self._check("list_models")
        return list(self.models)

    def model_states(self) -> dict[str, dict[str, Any]]:
        self._check("model_states")
        return {name: dict(entry) for name, entry in self.states.items()}

    def load_model(self, name: str) -> dict[str, Any]:
        self._check("load_model", name)
        self.states[name] = {"state": "loading", "progress": 0.1}
        return self.states[name]

    def change_model(self, old: str, new: str) -> dict[str, Any]:
        self._check("change_model", (old, new))
        self.states[old] = {"state": "unloaded"}
        self.states[new] = {"state": "loading", "progress": 0.1}
        return self.states[new]

    def stop_model(self, name: str) -> dict[str, Any]:
        self._check("stop_model", name)
        self.states[name] = {"state": "unloaded"}
        return self.states[name]

    def chat(self, mode: str, payload: dict[str, Any]) -> Iterator[ChatPiece]:
        self._check("chat", (mode, payload))
        for piece in self.answer:
            yield ChatPiece(text=piece)
            if self.chat_error:
                raise self.chat_error
        if mode != "chat":
            yield ChatPiece(
                docs=("**[1]** [a.md](http://fake-api/download) \n\n第一段",), direct_answer=self.direct_answer
            )
        yield ChatPiece(message_id="m1")

    def server_configs(self) -> ServerConfigs:
        self._check("server_configs")
        return fake_server_configs()

    def feedback(self, message_id: str, score: int, reason: str = "") -> None:
        self._check("feedback", (message_id, score))
