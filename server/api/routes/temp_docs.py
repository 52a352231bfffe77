"""Uploading files for one chat (/chat/file_chat): parsed and embedded in memory, never added to a KB."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from server.api.deps import TempKnowledge
from server.api.envelope import Envelope
from server.api.schemas import Reply, TempDocsOut
from server.errors import ZhikuError
from server.knowledge_base.params import Chunking

router = APIRouter(prefix="/knowledge_base", tags=["Chat"])


def _response(knowledge_id: str, failed: dict[str, ZhikuError], total: int) -> Envelope:
    data = {"id": knowledge_id, "failed_files": [{name: error.message} for name, error in failed.items()]}
    if len(failed) < total:
        return Envelope(data, f"{total - len(failed)} of {total} files ready for /chat/file_chat")
    first = next(iter(failed.values()))
    return Envelope(data, f"no file could be used, e.g. {first.message}", first.status_code)


@router.post(
    "/upload_temp_docs",
    summary="Upload files to chat with (kept in memory for an hour after last use)",
    response_model=Reply[TempDocsOut],
)
async def upload_temp_docs(
    temp: TempKnowledge,
    uploads: Annotated[list[UploadFile], File(alias="files")],
    prev_id: Annotated[str | None, Form(description="add to the files of an earlier upload")] = None,
    knowledge_id: Annotated[str | None, Form(description="the same as prev_id (Chatchat 0.2's client's name)")] = None,
    chunk_size: Annotated[int | None, Form()] = None,
    chunk_overlap: Annotated[int | None, Form()] = None,
    zh_title_enhance: Annotated[bool | None, Form()] = None,
) -> Envelope:
    sent = [(upload.filename, upload.file) for upload in uploads]
    chunking = Chunking(chunk_size, chunk_overlap, zh_title_enhance)
    new_id, failed = await run_in_threadpool(temp.upload, prev_id or knowledge_id or "", sent, chunking)
    return _response(new_id, failed, len(sent))
