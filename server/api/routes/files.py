"""Routes for the files of a knowledge base: upload, list, delete, update, download, chunk edits."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from server.api.deps import Chunks, Files, Jobs, KnowledgeBases
from server.api.envelope import Envelope, failures_response
from server.api.fields import OCR_HELP, ChunkingFields, RequestBody
from server.api.filters import parse_tags
from server.api.schemas import FailedFilesOut, FailedIdsOut, FileDetail, FilePageOut, JobView, Reply
from server.db.repository import FileOrder
from server.knowledge_base.files import UpdateOptions, UploadOptions
from server.knowledge_base.params import Chunking
from server.ocr import OcrMode

router = APIRouter(prefix="/knowledge_base", tags=["Knowledge Base Management"])

KbQuery = Annotated[str, Query(description="knowledge base name")]
_BACKGROUND = "answer 202 with a job at once; follow it at /knowledge_base/jobs/{job_id}"
_QUEUED: dict[int | str, dict[str, Any]] = {
    202: {"model": Reply[JobView], "description": "background=true: the files are staged and queued as this job"}
}
_TAGS_HELP = 'the uploaded files\' tags: comma-separated ("manual, 2024") or a JSON list (["manual", "2024"])'
_BINARY: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
}


@router.get(
    "/list_files",
    summary="Files of a knowledge base (paths relative to its content folder)",
    response_model=Reply[list[str]],
)
def list_files(files: Files, knowledge_base_name: KbQuery) -> Envelope:
    return Envelope(files.list_files(knowledge_base_name))


@router.get(
    "/list_file_details",
    summary="One page of files with size, chunk count, loader and status",
    response_model=Reply[FilePageOut],
)
def list_file_details(
    files: Files,
    knowledge_base_name: KbQuery,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    order_by: FileOrder = "file_name",
    descending: bool = False,
) -> Envelope:
    total, rows = files.file_details(
        knowledge_base_name, offset=offset, limit=limit, order_by=order_by, descending=descending
    )
    return Envelope({"total": total, "offset": offset, "files": rows})


@router.get(
    "/list_folder_only_files",
    summary="Files in the content folder that are not vectorized yet",
    response_model=Reply[list[str]],
)
def list_folder_only_files(files: Files, knowledge_base_name: KbQuery) -> Envelope:
    return Envelope(files.folder_only_files(knowledge_base_name))


@router.post(
    "/upload_docs",
    summary="Upload files, parse them and add them to the vector store (background=true: as a job)",
    response_model=Reply[FailedFilesOut],
    responses=_QUEUED,
)
async def upload_docs(
    files: Files,
    jobs: Jobs,
    knowledge_base_name: Annotated[str, Form()],
    uploads: Annotated[list[UploadFile], File(alias="files", description="names may contain '/' for folders")],
    override: Annotated[bool, Form()] = False,
    to_vector_store: Annotated[bool, Form()] = True,
    chunk_size: Annotated[int | None, Form()] = None,
    chunk_overlap: Annotated[int | None, Form()] = None,
    zh_title_enhance: Annotated[bool | None, Form()] = None,
    ocr: Annotated[OcrMode | None, Form(description=OCR_HELP)] = None,
    docs: Annotated[str | None, Form(description='{"file": [{"page_content", "metadata"}]} as JSON')] = None,
    tags: Annotated[str | None, Form(description=_TAGS_HELP)] = None,
    not_refresh_vs_cache: Annotated[bool, Form()] = False,
    background: Annotated[bool, Form(description=_BACKGROUND)] = False,
) -> Envelope:
    chunking = Chunking(chunk_size, chunk_overlap, zh_title_enhance, ocr)
    sent = [(upload.filename, upload.file) for upload in uploads]
    options = UploadOptions(override, to_vector_store, chunking, docs, parse_tags(tags))
    if background and to_vector_store:  # the job records the KB's OCR mode as it is now
        job = await run_in_threadpool(jobs.submit_upload, knowledge_base_name, sent, options)
        return Envelope(job, f"queued {job.total_files} files as job {job.job_id}", 202)
    failed = await run_in_threadpool(files.upload, knowledge_base_name, sent, options)
    return failures_response(failed, len(sent), f"uploaded {len(sent) - len(failed)} files")


class UpdateFileTags(RequestBody):
    knowledge_base_name: str
    file_name: str = Field(min_length=1)
    tags: list[str] = Field(max_length=64, description="the file's new tags (replacing the old ones); [] clears them")


@router.post(
    "/update_file_tags",
    summary="Replace a file's tags (search filters see them at once)",
    response_model=Reply[FileDetail],
)
def update_file_tags(files: Files, body: UpdateFileTags) -> Envelope:
    detail = files.set_tags(body.knowledge_base_name, body.file_name, body.tags)
    return Envelope(detail, f"{detail.file_name} has {len(detail.tags)} tags")


class SetFileEnabled(RequestBody):
    knowledge_base_name: str
    file_name: str = Field(min_length=1)
    enabled: bool = Field(description="false: keep the file but never retrieve it; true: retrieve it again")


@router.post(
    "/set_file_enabled", summary="Enable or disable a file without deleting it", response_model=Reply[FileDetail]
)
def set_file_enabled(files: Files, body: SetFileEnabled) -> Envelope:
    detail = files.set_enabled(body.knowledge_base_name, body.file_name, body.enabled)
    return Envelope(detail, f"{detail.file_name} is {'enabled' if detail.enabled else 'disabled'}")


class DeleteDocs(RequestBody):
    knowledge_base_name: str
    file_names: list[str] = Field(min_length=1)
    delete_content: bool = False
    not_refresh_vs_cache: bool = False


@router.post(
    "/delete_docs",
    summary="Remove files from the vector store (and from disk with delete_content)",
    response_model=Reply[FailedFilesOut],
)
def delete_docs(files: Files, body: DeleteDocs) -> Envelope:
    failed = files.delete(body.knowledge_base_name, body.file_names, delete_content=body.delete_content)
    return failures_response(failed, len(body.file_names), f"deleted {len(body.file_names) - len(failed)} files")


class UpdateDocs(ChunkingFields):
    knowledge_base_name: str
    file_names: list[str] = Field(min_length=1)
    override_custom_docs: bool = False
    docs: str | dict[str, Any] | None = None
    not_refresh_vs_cache: bool = False
    background: bool = Field(False, description=_BACKGROUND)


@router.post(
    "/update_docs",
    summary="Re-parse and re-embed files from the content folder (background=true: as a job)",
    response_model=Reply[FailedFilesOut],
    responses=_QUEUED,
)
def update_docs(files: Files, jobs: Jobs, body: UpdateDocs) -> Envelope:
    if body.background:  # the job records the KB's OCR mode as it is now
        job = jobs.submit_folder_files(body.knowledge_base_name, body.file_names, body.chunking())
        return Envelope(job, f"queued {job.total_files} files as job {job.job_id}", 202)
    options = UpdateOptions(body.chunking(), body.override_custom_docs, body.docs)
    failed = files.update(body.knowledge_base_name, body.file_names, options)
    return failures_response(failed, len(body.file_names), f"updated {len(body.file_names) - len(failed)} files")


@router.get(
    "/download_doc",
    summary="Download (or preview inline) a file of a knowledge base",
    response_class=FileResponse,
    responses=_BINARY,
)
def download_doc(
    kbs: KnowledgeBases, knowledge_base_name: KbQuery, file_name: Annotated[str, Query()], preview: bool = False
) -> FileResponse:
    path = kbs.file_path(knowledge_base_name, file_name)
    disposition = "inline" if preview else "attachment"
    return FileResponse(path, filename=path.name, content_disposition_type=disposition)


class UpdateById(RequestBody):
    knowledge_base_name: str
    docs: dict[str, dict[str, Any] | None] = Field(
        description='{"chunk id": {"page_content": "...", "metadata": {}}} ; null deletes the chunk'
    )


@router.post(
    "/update_docs_by_id",
    summary="Edit, delete or add individual chunks; other chunks stay as they are",
    response_model=Reply[FailedIdsOut],
)
def update_docs_by_id(chunks: Chunks, body: UpdateById) -> Envelope:
    failed = chunks.update_by_id(body.knowledge_base_name, body.docs)
    data = {"failed_ids": {chunk_id: error.message for chunk_id, error in failed.items()}}
    if failed and len(failed) == len(body.docs):
        first = next(iter(failed.values()))
        return Envelope(data, first.message, first.status_code)
    return Envelope(data, f"updated {len(body.docs) - len(failed)} chunks")
