"""The audit log of writes, for the admin: as JSON pages, or all of it as CSV."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from server.api.deps import Audit
from server.api.envelope import Envelope
from server.api.schemas import Reply
from server.auth.audit import AuditQuery, AuditView

router = APIRouter(prefix="/audit", tags=["Audit Log"])


def _query(
    knowledge_base_name: str | None = None,
    actor: Annotated[str | None, Query(description='"admin", "anonymous" or "key:<id>"')] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> AuditQuery:
    return AuditQuery(kb_name=knowledge_base_name, actor=actor, since=since, until=until, limit=limit, offset=offset)


Filters = Annotated[AuditQuery, Depends(_query)]


@router.get("", summary="Write requests, newest first", response_model=Reply[list[AuditView]])
def list_entries(audit: Audit, query: Filters) -> Envelope:
    return Envelope(audit.entries(query))


@router.get(
    "/export",
    summary="Every matching write request as CSV, newest first (limit is ignored)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "the entries, one per line, with a header"}},
)
def export_entries(audit: Audit, query: Filters) -> StreamingResponse:
    lines = audit.csv_lines(query)
    headers = {"Content-Disposition": 'attachment; filename="zhiku-audit.csv"'}
    return StreamingResponse(lines, media_type="text/csv; charset=utf-8", headers=headers)
