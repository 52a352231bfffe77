"""The FastAPI application factory."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from starlette.middleware.cors import CORSMiddleware

from configs import Settings
from server import __version__
from server.api.access import authorize
from server.api.audit_trail import AuditTrail
from server.api.deps import bearer_scheme
from server.api.envelope import install_error_handlers
from server.api.guards import ApiKeyGuard, BodyLimit, HidePaths
from server.api.routes import (
    api_keys,
    archives,
    audit,
    chat,
    faq,
    files,
    finetune,
    folder_sync,
    health,
    jobs,
    knowledge_bases,
    llm_models,
    openai_compat,
    other,
    rebuild,
    search,
    server_info,
    summaries,
    temp_docs,
)
from server.api.schemas import ERROR_RESPONSES
from server.api.sse import EventStream
from server.auth.principal import Principal
from server.bootstrap import Services, build_services


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


def hidden_roots(settings: Settings) -> dict[str, str]:
    """Folders error answers must not show, with what they show instead."""
    data_dir = settings.data_dir
    roots = {str(data_dir.resolve()): "<data_dir>", str(data_dir.absolute()): "<data_dir>"}
    roots[str(Path(tempfile.gettempdir()).resolve())] = "<tmp>"
    roots[str(Path(__file__).resolve().parents[2])] = "<app>"
    roots[str(Path.home())] = "<home>"
    return roots


def _services(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


def _authenticate(app: FastAPI, token: str) -> Principal:
    return _services(app).keys.authenticate(token)


def create_app(settings: Settings, *, services: Services | None = None) -> FastAPI:
    """Build the app; its services (registry, embeddings, stores, chat) are built at start-up unless given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = services or build_services(settings)
        app.state.services.start(warm_up=True)
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
    install_error_handlers(app)
    app.include_router(health.router)
    protected = [Depends(bearer_scheme), Depends(authorize)]
    for module in (
        knowledge_bases,
        files,
        jobs,
        folder_sync,
        search,
        rebuild,
        summaries,
        chat,
        temp_docs,
        llm_models,
        finetune,
        server_info,
        other,
        api_keys,
        audit,
        archives,
        faq,
    ):
        app.include_router(module.router, dependencies=protected, responses=ERROR_RESPONSES)
    app.include_router(openai_compat.router, dependencies=protected)
    app.openapi = _documented(app)  # type: ignore[method-assign]  # FastAPI's documented extension point
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)
    app.add_middleware(HidePaths, roots=hidden_roots(settings))
    app.add_middleware(AuditTrail, record=lambda entry: _services(app).audit.record(entry))  # sees hidden paths
    key = api_key.get_secret_value() if api_key else None
    app.add_middleware(ApiKeyGuard, key=key, authenticate=lambda token: _authenticate(app, token))  # answers first
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.api.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    return app
