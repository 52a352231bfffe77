"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

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
from server.api.schemas import ERROR_RESPONSES
from server.api.sse import EventStream
from server.bootstrap import Services, build_services


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


def _documented(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """/openapi.json as FastAPI builds it, with two corrections for the streaming routes: their events are the
    event model they name (server.api.sse.event_schema), not a plain string, and their errors are JSON."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            for operation in (op for path in spec["paths"].values() for op in path.values()):
                for status, response in operation.get("responses", {}).items():
                    _correct(status, response.get("content", {}))
        return app.openapi_schema or build()

    return openapi


def _correct(status: str, content: dict[str, Any]) -> None:
    events = content.get(EventStream.media_type)
    if events is None:
        return
    if status.startswith(("4", "5")):
        content["application/json"] = content.pop(EventStream.media_type)
    elif "$ref" in events.get("schema", {}):
        events["schema"].pop("type", None)


def create_app(settings: Settings, *, services: Services | None = None) -> FastAPI:
    """Build the app; its services (registry, embeddings, stores, chat) are built at start-up unless given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = services or build_services(settings)
        try:
            yield
        finally:
            await app.state.services.aclose()

    app = FastAPI(
        title="Zhiku (知库) API",
        version=__version__,
        description="Knowledge-base management and search. Langchain-Chatchat 0.2 compatible routes.",
        lifespan=lifespan,
    )
    api_key = settings.api.api_key
    app.state.api_key = api_key.get_secret_value() if api_key else None
    install_error_handlers(app)
    app.include_router(health.router)
    protected = [Depends(require_api_key)]
    for module in (knowledge_bases, files, search, rebuild, chat, temp_docs, llm_models, server_info, other):
        app.include_router(module.router, dependencies=protected, responses=ERROR_RESPONSES)
    app.include_router(openai_compat.router, dependencies=protected)
    app.openapi = _documented(app)  # type: ignore[method-assign]  # FastAPI's documented extension point
    app.add_middleware(UploadSizeLimit, limit=settings.max_upload_bytes)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.api.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    return app
