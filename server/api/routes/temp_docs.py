"""Uploading files for one chat (/chat/file_chat): parsed and embedded in memory, never added to a KB."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from server.api.deps import Ctx, UploadLimit
from server.api.envelope import Envelope
from server.api.routes.chat_deps import Chat
from server.api.routes.files import chunk_params
from server.errors import FileTooLarge, InvalidInput, ZhikuError
from server.knowledge_base.paths import validate_file_path

router = APIRouter(prefix="/knowledge_base", tags=["Chat"])


async def _save(uploads: list[UploadFile], folder: Path, limit: int) -> list[tuple[Path, str]]:
    saved, written = [], 0
    for index, upload in enumerate(uploads):
        name = validate_file_path(upload.filename)
        path = folder / str(index) / Path(name).name
        path.parent.mkdir(parents=True)
        with path.open("wb") as out:
            while block := await upload.read(1 << 20):
                written += len(block)
                if written > limit:
                    raise FileTooLarge(
                        f"upload exceeds {limit // (1024 * 1024)} MB (api.max_upload_mb); send fewer or smaller files"
                    )
                out.write(block)
        saved.append((path, name))
    if len({name for _, name in saved}) != len(saved):
        raise InvalidInput("the same file name was sent twice in one upload")
    return saved


def _response(knowledge_id: str, failed: dict[str, ZhikuError], total: int) -> Envelope:
    data = {"id": knowledge_id, "failed_files": [{name: error.message} for name, error in failed.items()]}
    if len(failed) < total:
        return Envelope(data, f"{total - len(failed)} of {total} files ready for /chat/file_chat")
    first = next(iter(failed.values()))
    return Envelope(data, f"no file could be used, e.g. {first.message}", first.status_code)


@router.post("/upload_temp_docs", summary="Upload files to chat with (kept in memory for an hour after last use)")
async def upload_temp_docs(
    ctx: Ctx,
    chat: Chat,
    limit: UploadLimit,
    uploads: Annotated[list[UploadFile], File(alias="files")],
    prev_id: Annotated[str | None, Form(description="add to the files of an earlier upload")] = None,
    chunk_size: Annotated[int | None, Form()] = None,
    chunk_overlap: Annotated[int | None, Form()] = None,
    zh_title_enhance: Annotated[bool | None, Form()] = None,
) -> Envelope:
    params = chunk_params(ctx, chunk_size, chunk_overlap, zh_title_enhance)
    folder = Path(tempfile.mkdtemp(prefix="zhiku-temp-"))
    try:
        saved = await _save(uploads, folder, limit)
        knowledge_id, failed = await run_in_threadpool(chat.temp.add_files, prev_id or "", saved, params)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return _response(knowledge_id, failed, len(saved))
