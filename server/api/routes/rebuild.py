"""Rebuilding a KB's vector store, with progress streamed as Server-Sent Events."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from server.api.deps import Ctx
from server.api.routes.files import chunk_params
from server.errors import ZhikuError
from server.knowledge_base.context import KbContext
from server.knowledge_base.ingest import ChunkParams
from server.knowledge_base.rebuild import RebuildProgress, RebuildTarget, recreate_vector_store
from server.knowledge_base.writer import load_kb

router = APIRouter(prefix="/knowledge_base", tags=["Knowledge Base Management"])

_DONE = object()


class RecreateVectorStore(BaseModel):
    knowledge_base_name: str
    allow_empty_kb: bool = True
    vs_type: str | None = None
    embed_model: str | None = None
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    zh_title_enhance: bool | None = None
    not_refresh_vs_cache: bool = False


def sse(event: dict[str, Any]) -> str:
    return f"data: {json.dumps(event, ensure_ascii=False)}\r\n\r\n"


def _progress_event(progress: RebuildProgress) -> dict[str, Any]:
    return {
        "code": progress.code,
        "msg": progress.msg,
        "total": progress.total,
        "finished": progress.finished,
        "doc": progress.doc,
    }


def _run(ctx: KbContext, body: RecreateVectorStore, params: ChunkParams, events: queue.Queue[Any]) -> None:
    try:
        failed = recreate_vector_store(
            ctx,
            body.knowledge_base_name,
            params=params,
            target=RebuildTarget(body.vs_type, body.embed_model),
            allow_empty_kb=body.allow_empty_kb,
            on_progress=lambda p: events.put(_progress_event(p)),
        )
        events.put({"code": 200, "msg": f"rebuilt {body.knowledge_base_name}", "failed_files": failed})
    except ZhikuError as error:
        events.put({"code": error.status_code, "msg": error.message})
    finally:
        events.put(_DONE)


@router.post("/recreate_vector_store", summary="Rebuild the vector store from the content folder (SSE progress)")
def recreate_vector_store_route(ctx: Ctx, body: RecreateVectorStore) -> StreamingResponse:
    load_kb(ctx, body.knowledge_base_name)  # a plain 404 before the stream starts
    params = chunk_params(ctx, body.chunk_size, body.chunk_overlap, body.zh_title_enhance)
    events: queue.Queue[Any] = queue.Queue()
    # The rebuild runs in its own thread so a slow client never holds the KB lock longer than the work takes.
    threading.Thread(target=_run, args=(ctx, body, params, events), daemon=True).start()

    def stream() -> Iterator[str]:
        while (event := events.get()) is not _DONE:
            yield sse(event)

    return StreamingResponse(stream(), media_type="text/event-stream")
