"""Routes for the files of a knowledge base: upload, list, delete, update, download, chunk edits."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from server.api.deps import Ctx, Files, KbService, UploadLimit
from server.api.envelope import Envelope, failures_response
from server.db.repository import FileOrder
from server.errors import FileTooLarge, InvalidInput
from server.knowledge_base.chunks import update_chunks_by_id
from server.knowledge_base.context import KbContext
from server.knowledge_base.files import StagedFile
from server.knowledge_base.ingest import ChunkParams
from server.knowledge_base.paths import staging_dir, validate_file_path
from server.knowledge_base.writer import load_kb

router = APIRouter(prefix="/knowledge_base", tags=["Knowledge Base Management"])

KbQuery = Annotated[str, Query(description="knowledge base name")]


def chunk_params(ctx: KbContext, size: int | None, overlap: int | None, title: bool | None) -> ChunkParams:
    defaults = ctx.defaults
    return ChunkParams(
        size if size is not None else defaults.chunk_size,
        overlap if overlap is not None else defaults.chunk_overlap,
        title if title is not None else defaults.zh_title_enhance,
    )


def parse_docs_field(raw: str | dict[str, Any] | None) -> dict[str, list[Any]]:
    """The `docs` field: {"file name": [{"page_content", "metadata"}, ...]}, as JSON text or an object."""
    if raw in (None, "", {}):
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as error:
        raise InvalidInput(f"docs is not valid JSON ({error.msg} at position {error.pos})") from error
    if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
        raise InvalidInput('docs must look like {"file.txt": [{"page_content": "...", "metadata": {}}]}')
    return {validate_file_path(name): chunks for name, chunks in value.items()}


@router.get("/list_files", summary="Files of a knowledge base (paths relative to its content folder)")
def list_files(files: Files, knowledge_base_name: KbQuery) -> Envelope:
    return Envelope(files.list_files(knowledge_base_name))


@router.get("/list_file_details", summary="One page of files with size, chunk count, loader and status")
def list_file_details(
    files: Files,
    knowledge_base_name: KbQuery,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    order_by: FileOrder = "file_name",
    descending: bool = False,
) -> Envelope:
    total, rows = files.file_details(
        knowledge_base_name, offset=offset, limit=limit, order_by=order_by, descending=descending
    )
    return Envelope({"total": total, "offset": offset, "files": rows})


@router.get("/list_folder_only_files", summary="Files in the content folder that are not vectorized yet")
def list_folder_only_files(files: Files, knowledge_base_name: KbQuery) -> Envelope:
    return Envelope(files.folder_only_files(knowledge_base_name))


async def _stage(ctx: KbContext, kb_name: str, uploads: Sequence[UploadFile], limit: int) -> list[StagedFile]:
    """Copy uploads under the KB's staging folder, refusing bad names and enforcing the size limit."""
    names = [validate_file_path(upload.filename) for upload in uploads]
    if len(set(names)) != len(names):
        raise InvalidInput("the same file name was sent twice in one upload")
    root = staging_dir(ctx.data_dir, kb_name) / uuid.uuid4().hex
    staged, written = [], 0
    for index, (upload, name) in enumerate(zip(uploads, names, strict=True)):
        path = root / str(index) / Path(name).name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            while block := await upload.read(1 << 20):
                written += len(block)
                if written > limit:
                    shutil.rmtree(root, ignore_errors=True)
                    raise FileTooLarge(
                        f"upload exceeds {limit // (1024 * 1024)} MB (api.max_upload_mb); send fewer or smaller files"
                    )
                out.write(block)
        staged.append(StagedFile(path, name))
    return staged


@router.post("/upload_docs", summary="Upload files, parse them and add them to the vector store")
async def upload_docs(
    ctx: Ctx,
    files: Files,
    limit: UploadLimit,
    knowledge_base_name: Annotated[str, Form()],
    uploads: Annotated[list[UploadFile], File(alias="files", description="names may contain '/' for folders")],
    override: Annotated[bool, Form()] = False,
    to_vector_store: Annotated[bool, Form()] = True,
    chunk_size: Annotated[int | None, Form()] = None,
    chunk_overlap: Annotated[int | None, Form()] = None,
    zh_title_enhance: Annotated[bool | None, Form()] = None,
    docs: Annotated[str | None, Form(description='{"file": [{"page_content", "metadata"}]} as JSON')] = None,
    not_refresh_vs_cache: Annotated[bool, Form()] = False,
) -> Envelope:
    load_kb(ctx, knowledge_base_name)
    params = chunk_params(ctx, chunk_size, chunk_overlap, zh_title_enhance)
    custom = parse_docs_field(docs)
    staged = await _stage(ctx, knowledge_base_name, uploads, limit)
    try:
        failed = await run_in_threadpool(
            files.upload,
            knowledge_base_name,
            staged,
            params=params,
            override=override,
            to_vector_store=to_vector_store,
            custom_docs=custom,
        )
    finally:
        if staged:
            shutil.rmtree(staged[0].path.parent.parent, ignore_errors=True)
    return failures_response(failed, len(staged), f"uploaded {len(staged) - len(failed)} files")


class DeleteDocs(BaseModel):
    knowledge_base_name: str
    file_names: list[str] = Field(min_length=1)
    delete_content: bool = False
    not_refresh_vs_cache: bool = False


@router.post("/delete_docs", summary="Remove files from the vector store (and from disk with delete_content)")
def delete_docs(files: Files, body: DeleteDocs) -> Envelope:
    failed = files.delete(body.knowledge_base_name, body.file_names, delete_content=body.delete_content)
    return failures_response(failed, len(body.file_names), f"deleted {len(body.file_names) - len(failed)} files")


class UpdateDocs(BaseModel):
    knowledge_base_name: str
    file_names: list[str] = Field(min_length=1)
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    zh_title_enhance: bool | None = None
    override_custom_docs: bool = False
    docs: str | dict[str, Any] | None = None
    not_refresh_vs_cache: bool = False


@router.post("/update_docs", summary="Re-parse and re-embed files from the content folder")
def update_docs(ctx: Ctx, files: Files, body: UpdateDocs) -> Envelope:
    params = chunk_params(ctx, body.chunk_size, body.chunk_overlap, body.zh_title_enhance)
    failed = files.update(
        body.knowledge_base_name,
        body.file_names,
        params=params,
        override_custom_docs=body.override_custom_docs,
        custom_docs=parse_docs_field(body.docs),
    )
    return failures_response(failed, len(body.file_names), f"updated {len(body.file_names) - len(failed)} files")


@router.get("/download_doc", summary="Download (or preview inline) a file of a knowledge base")
def download_doc(
    kbs: KbService, knowledge_base_name: KbQuery, file_name: Annotated[str, Query()], preview: bool = False
) -> FileResponse:
    path = kbs.file_path(knowledge_base_name, file_name)
    disposition = "inline" if preview else "attachment"
    return FileResponse(path, filename=path.name, content_disposition_type=disposition)


class UpdateById(BaseModel):
    knowledge_base_name: str
    docs: dict[str, dict[str, Any] | None] = Field(
        description='{"chunk id": {"page_content": "...", "metadata": {}}} ; null deletes the chunk'
    )


@router.post("/update_docs_by_id", summary="Edit, delete or add individual chunks; other chunks stay as they are")
def update_docs_by_id(ctx: Ctx, body: UpdateById) -> Envelope:
    failed = update_chunks_by_id(ctx, body.knowledge_base_name, body.docs)
    data = {"failed_ids": {chunk_id: error.message for chunk_id, error in failed.items()}}
    if failed and len(failed) == len(body.docs):
        first = next(iter(failed.values()))
        return Envelope(data, first.message, first.status_code)
    return Envelope(data, f"updated {len(body.docs) - len(failed)} chunks")
