"""Rebuilding a KB's vector store, with progress streamed as Server-Sent Events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from server.api.deps import Rebuild
from server.api.fields import ChunkingFields
from server.api.schemas import RebuildEventOut
from server.api.sse import EventStream, event_schema, sse_lines
from server.knowledge_base.rebuild import RebuildDone, RebuildProgress, RebuildRequest

router = APIRouter(prefix="/knowledge_base", tags=["Knowledge Base Management"])


class RecreateVectorStore(ChunkingFields):
    knowledge_base_name: str
    allow_empty_kb: bool = True
    vs_type: str | None = None
    embed_model: str | None = None
    not_refresh_vs_cache: bool = False


def _event(item: RebuildProgress | RebuildDone) -> dict[str, Any]:
    if isinstance(item, RebuildProgress):
        return {"code": item.code, "msg": item.msg, "total": item.total, "finished": item.finished, "doc": item.doc}
    if item.failed_files is None:
        return {"code": item.code, "msg": item.msg}
    return {"code": item.code, "msg": item.msg, "failed_files": item.failed_files}


@router.post(
    "/recreate_vector_store",
    summary="Rebuild the vector store from the content folder (SSE progress)",
    response_class=EventStream,
    responses=event_schema(RebuildEventOut),
)
def recreate_vector_store_route(rebuild: Rebuild, body: RecreateVectorStore) -> StreamingResponse:
    request = RebuildRequest(body.vs_type, body.embed_model, body.chunking(), body.allow_empty_kb)
    events = rebuild.stream(body.knowledge_base_name, request)  # a plain 404 / 422 before any event
    return sse_lines(_event(item) for item in events)
