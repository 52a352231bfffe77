"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from configs import Settings
from server import __version__
from server.api.deps import require_api_key
from server.api.envelope import Envelope, install_error_handlers
from server.api.routes import (
    chat,
    files,
    health,
    knowledge_bases,
    llm_models,
    openai_compat,
    other,
    rebuild,
    search,
    server_info,
    temp_docs,
)
from server.bootstrap import build_chat_context, build_context, close_context
from server.knowledge_base.context import KbContext


class UploadSizeLimit:
    """Refuses a request whose declared body is over the limit before any of it is read."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.limit:
                megabytes = self.limit // (1024 * 1024)
                message = f"request body exceeds {megabytes} MB (api.max_upload_mb); send fewer or smaller files"
                await Envelope(None, message, 413)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(settings: Settings, *, ctx: KbContext | None = None) -> FastAPI:
    """Build the app; the context (registry, embeddings, stores) is created at start-up unless given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.ctx = ctx or build_context(settings)
        app.state.chat = build_chat_context(settings, app.state.ctx)
        try:
            yield
        finally:
            await app.state.chat.aclose()
            close_context(app.state.ctx)

    app = FastAPI(
        title="Zhiku (知库) API",
        version=__version__,
        description="Knowledge-base management and search. Langchain-Chatchat 0.2 compatible routes.",
        lifespan=lifespan,
    )
    api_key = settings.api.api_key
    app.state.api_key = api_key.get_secret_value() if api_key else None
    app.state.max_upload_bytes = settings.max_upload_bytes
    install_error_handlers(app)
    app.include_router(health.router)
    protected = [Depends(require_api_key)]
    for module in (knowledge_bases, files, search, rebuild):
        app.include_router(module.router, dependencies=protected)
    for module in (chat, temp_docs, llm_models, server_info, other, openai_compat):
        app.include_router(module.router, dependencies=protected)
    app.add_middleware(UploadSizeLimit, limit=settings.max_upload_bytes)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.api.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    return app
