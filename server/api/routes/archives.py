"""KB archives: export a knowledge base to one zip file, import one (into any store type, under any name)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from server.api.deps import Jobs, Porter
from server.api.envelope import Envelope
from server.api.schemas import Reply
from server.knowledge_base.archive import LoadedFile
from server.knowledge_base.porter import ImportReport, ImportRequest

router = APIRouter(prefix="/knowledge_base", tags=["Knowledge Base Management"])

_ZIP: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}
}


@router.get(
    "/export",
    summary="Export a knowledge base: manifest, original files, every chunk (hand edits included), vectors",
    response_class=FileResponse,
    responses=_ZIP,
)
async def export_kb(
    porter: Porter,
    knowledge_base_name: Annotated[str, Query(description="knowledge base name")],
    with_vectors: Annotated[bool, Query(description="false: smaller; the importer embeds the chunks again")] = True,
) -> FileResponse:
    porter.work_dir.mkdir(parents=True, exist_ok=True)
    target = porter.work_dir / f"export-{uuid.uuid4().hex}.zip"
    await run_in_threadpool(porter.export, knowledge_base_name, target, with_vectors=with_vectors)
    return FileResponse(
        target,
        media_type="application/zip",
        filename=f"{knowledge_base_name}.zhiku.zip",
        background=BackgroundTask(target.unlink, missing_ok=True),
    )


@router.post(
    "/import",
    summary="Import a KB archive; vectors are reused when this server's model matches the one that made them",
    status_code=201,
    response_model=Reply[ImportReport],
    responses={202: {"model": Reply[ImportReport], "description": "another model: a job embeds the chunks again"}},
)
async def import_kb(
    porter: Porter,
    jobs: Jobs,
    archive: Annotated[UploadFile, File(alias="file", description="a .zhiku.zip made by /knowledge_base/export")],
    knowledge_base_name: Annotated[str | None, Form(description="none: the archive's KB name")] = None,
    vector_store_type: Annotated[str | None, Form(description="none: the archive's, if available here")] = None,
    embed_model: Annotated[str | None, Form(description="another model embeds the chunks again")] = None,
    overwrite: Annotated[bool, Form(description="replace a KB of that name (deleted first)")] = False,
) -> Envelope:
    porter.work_dir.mkdir(parents=True, exist_ok=True)
    staged = porter.work_dir / f"upload-{uuid.uuid4().hex}.zip"
    try:
        await run_in_threadpool(_save, archive, staged)
        request = ImportRequest(
            staged, name=knowledge_base_name or None, vs_type=vector_store_type or None,
            embed_model=embed_model or None, overwrite=overwrite,
        )  # fmt: skip

        def defer(kb_name: str, files: Sequence[LoadedFile]) -> str:
            return jobs.submit_import(kb_name, files).job_id

        report = await run_in_threadpool(partial(porter.import_archive, request, defer=defer))
    finally:
        staged.unlink(missing_ok=True)
    if report.job_id:
        return Envelope(report, f"created {report.kb_name!r}; job {report.job_id} embeds its chunks again", 202)
    return Envelope(report, f"imported {report.chunks} chunks into {report.kb_name!r}", 201)


def _save(upload: UploadFile, target: Path) -> None:
    with target.open("wb") as sink:
        shutil.copyfileobj(upload.file, sink, 1 << 20)
