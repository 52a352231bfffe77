"""FastAPI dependencies: the shared context, the services built on it, and the optional API key check."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.errors import Unauthorized
from server.knowledge_base.context import KbContext
from server.knowledge_base.files import FileService
from server.knowledge_base.service import KnowledgeBaseService


def get_ctx(request: Request) -> KbContext:
    ctx: KbContext = request.app.state.ctx
    return ctx


Ctx = Annotated[KbContext, Depends(get_ctx)]


def get_kb_service(ctx: Ctx) -> KnowledgeBaseService:
    return KnowledgeBaseService(ctx)


def get_file_service(ctx: Ctx) -> FileService:
    return FileService(ctx)


KbService = Annotated[KnowledgeBaseService, Depends(get_kb_service)]
Files = Annotated[FileService, Depends(get_file_service)]

_bearer = HTTPBearer(auto_error=False)


def require_api_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    expected: str | None = request.app.state.api_key
    if expected is None:
        return
    if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise Unauthorized("missing or wrong API key: send the header 'Authorization: Bearer <api.api_key>'")


def get_upload_limit(request: Request) -> int:
    limit: int = request.app.state.max_upload_bytes
    return limit


UploadLimit = Annotated[int, Depends(get_upload_limit)]
